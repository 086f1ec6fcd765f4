"""Pushing sales as approved sales invoices, numbered with the sale number."""

from decimal import Decimal

from ecommerce import selectors
from ecommerce.models import Sale

from ... import mappers
from ...models import RecordKind, XeroLink
from ..paging import id_chunks
from .context import PushContext
from .sender import XeroWrite

State = XeroLink.State
# Xero's words for "this invoice has payments and cannot be changed" (docs/xero-api.md section 7).
LOCKED_MARKERS = (
    "cannot be edited as it has a payment",
    "not of valid status for modification",
    "because it has payments or credit notes allocated",
)


def _total_differs(sale: Sale, element: dict) -> str | None:
    expected = selectors.sale_totals(sale).total
    total = element.get("Total")
    if total is not None and Decimal(str(total)) != expected:
        return (f"Xero's total {total} differs from the website's {expected}: check the tax mapping "
                "and the lines.")
    return None


INVOICES = XeroWrite(kind=RecordKind.SALE, operation="update_or_create_invoices", sdk_body_name="invoices",
                     body_key="Invoices", id_key="InvoiceID", extra={"unitdp": 4}, locked_markers=LOCKED_MARKERS,
                     check=_total_differs)


def push_invoices(context: PushContext, sales: list[Sale]) -> set[int]:
    """Push these sales; returns the ids that got a Xero id in this run."""
    links = context.links.read(RecordKind.SALE, [sale.pk for sale in sales])
    contact_links = context.links.read(RecordKind.CONTACT, {sale.contact_id for sale in sales})
    _find_lost_invoices(context, [links[sale.pk] for sale in sales], {sale.pk: sale for sale in sales})
    config, sender = context.config, context.sender
    items = []
    for sale in sales:
        link, contact_link = links[sale.pk], contact_links[sale.contact_id]
        if link.state == State.LOCKED:
            continue  # Xero refused an edit once; it is shown, and not retried in a loop
        if not contact_link.xero_id:
            sender.fail(sale, link, f"Waiting for its contact, which is not in Xero yet: "
                                    f"{contact_link.last_error or 'not sent'}")
            continue
        try:
            payload = mappers.invoice_payload(
                sale, list(sale.lines.all()), contact_xero_id=contact_link.xero_id,
                sales_account=config.sales_account, shipping_account=config.shipping_account,
                tax_types=config.tax_types, tax_rates=config.tax_rates, xero_id=link.xero_id,
            )
        except mappers.MappingError as error:
            sender.fail(sale, link, str(error))
            continue
        items.append(sender.item(sale, link, payload, sale.number))
    had_id = {item.record.pk for item in items if item.link.xero_id}
    sender.send(INVOICES, items)
    return {item.record.pk for item in items if item.link.xero_id and item.record.pk not in had_id}


def _find_lost_invoices(context: PushContext, links: list[XeroLink], sales: dict[int, Sale]) -> None:
    """Invoices whose creation had an unknown outcome: ask Xero for them by number (unless the run's time
    is up: they then wait, still in flight, for the next run, which asks)."""
    if context.sender.time_is_up():
        return
    lost = {sales[link.local_id].number: link for link in links if link.state == State.IN_FLIGHT and not link.xero_id}
    for numbers in id_chunks(lost):
        found = context.gateway.call("get_invoices", invoice_numbers=numbers, summary_only=True).get("Invoices", [])
        for invoice in found:
            link = lost.get(invoice.get("InvoiceNumber"))
            if link is not None and invoice.get("Type", "ACCREC") == "ACCREC":
                link.xero_id = invoice["InvoiceID"]
                link.payload_hash = ""  # what Xero holds is unknown: send the sale again as an update

