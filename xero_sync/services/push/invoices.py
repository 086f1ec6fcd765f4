"""Pushing sales as approved sales invoices, numbered with the sale number; a cancelled sale's as voided.

A new sale is created with PUT, which Xero refuses for a number it already holds: an invoice the
bookkeeper typed under that number is never overwritten (POST, Xero's update-or-create, would match it by
number and change it). Only an invoice known to be ours (by its id) is updated.
"""

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


def _total_differs_unless_voided(sale: Sale, element: dict) -> str | None:
    return None if element.get("Status") == "VOIDED" else _total_differs(sale, element)


NEW_INVOICES = XeroWrite(kind=RecordKind.SALE, operation="create_invoices", sdk_body_name="invoices",
                         body_key="Invoices", id_key="InvoiceID", extra={"unitdp": 4}, locked_markers=LOCKED_MARKERS,
                         check=_total_differs)
INVOICES = XeroWrite(kind=RecordKind.SALE, operation="update_or_create_invoices", sdk_body_name="invoices",
                     body_key="Invoices", id_key="InvoiceID", extra={"unitdp": 4}, locked_markers=LOCKED_MARKERS,
                     check=_total_differs_unless_voided)


def _voids(sale: Sale) -> bool:
    """A cancelled sale with no money received and no credit: its invoice is voided. One with money or
    credit (its own refunds, or the bookkeeper's credit note allocated in Xero) was settled by credit (Xero
    cannot void an invoice with payments or credit), so its invoice stays as it is."""
    return sale.status == Sale.Status.CANCELLED and not (
        sale.receipts.all() or sale.refunds.all() or sale.payments.all() or sale.credit_allocations.all())


def push_invoices(context: PushContext, sales: list[Sale]) -> set[int]:
    """Push these sales; returns the ids that got a Xero id in this run."""
    links = context.links.read(RecordKind.SALE, [sale.pk for sale in sales])
    contact_links = context.links.read(RecordKind.CONTACT, {sale.contact_id for sale in sales})
    _find_lost_invoices(context, [links[sale.pk] for sale in sales], {sale.pk: sale for sale in sales}, contact_links)
    config, sender = context.config, context.sender
    new, updates = [], []
    for sale in sales:
        link, contact_link = links[sale.pk], contact_links[sale.contact_id]
        if link.state in (State.LOCKED, State.CONFLICT):
            continue  # Xero refused an edit once, or the number is the bookkeeper's: shown, not retried in a loop
        if _voids(sale):
            if link.xero_id:  # (cancelled before it reached Xero: nothing to void)
                updates.append(sender.item(sale, link, mappers.void_payload(sale, xero_id=link.xero_id),
                                           sale.number))
            continue
        # A cancelled sale not voided and not in Xero yet is one whose money went through Xero
        # (selectors.sales_for_xero): its invoice goes as sold, for its payment and credit note to settle.
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
        (updates if link.xero_id else new).append(sender.item(sale, link, payload, sale.number))
    sender.send(NEW_INVOICES, new)
    sender.send(INVOICES, updates)
    return {item.record.pk for item in new if item.link.xero_id}


def _find_lost_invoices(context: PushContext, links: list[XeroLink], sales: dict[int, Sale], contact_links) -> None:
    """Invoices whose creation had an unknown outcome, or that Xero refused as a number it holds: ask Xero
    for them by number (unless the run's time is up: they then wait, still in flight, for the next run,
    which asks). One found under the sale's number is adopted only if it is ours: for the sale's contact, at
    the sale's total. Any other is the bookkeeper's, and stays untouched: the sale shows a conflict."""
    if context.sender.time_is_up():
        return
    lost = {sales[link.local_id].number: link for link in links if link.state == State.IN_FLIGHT and not link.xero_id}
    for numbers in id_chunks(lost):
        found = context.gateway.call("get_invoices", invoice_numbers=numbers, summary_only=True).get("Invoices", [])
        for invoice in found:
            link = lost.get(invoice.get("InvoiceNumber"))
            if link is None or invoice.get("Type", "ACCREC") != "ACCREC":
                continue
            sale = sales[link.local_id]
            if _is_ours(invoice, sale, contact_links[sale.contact_id].xero_id):
                link.xero_id = invoice["InvoiceID"]
                link.payload_hash = ""  # what Xero holds is unknown: send the sale again as an update
            else:
                # Said as Xero's: the sale was sent (it is in flight), and what stands in its way is a record
                # Xero holds, which this lookup only read; "not sent to Xero" would be untrue.
                link.state = State.CONFLICT
                link.last_error, link.error_by = _not_ours_words(invoice, sale), XeroLink.ErrorBy.XERO
                context.links.changed(link)
                context.links.event(link, State.CONFLICT, link.last_error)
    context.links.flush()


def _is_ours(invoice: dict, sale: Sale, contact_xero_id) -> bool:
    contact = str((invoice.get("Contact") or {}).get("ContactID") or "")
    total = invoice.get("Total")
    return (contact == str(contact_xero_id or "") and total is not None
            and Decimal(str(total)) == selectors.sale_totals(sale).total)


def _not_ours_words(invoice: dict, sale: Sale) -> str:
    name = (invoice.get("Contact") or {}).get("Name") or "another contact"
    return (f"Xero already holds an invoice {sale.number} that the website did not create ({name}, "
            f"{invoice.get('Total')}, {invoice.get('Status', '').lower() or 'unknown status'}); the push leaves it "
            "alone. Ask the bookkeeper to renumber theirs in Xero, then send this sale again.")
