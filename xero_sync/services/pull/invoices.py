"""Pulling every sales invoice Xero holds, with its lines, whoever typed it."""

import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ecommerce.invoice_totals import contact_invoice_totals_refresh
from ecommerce.models import Contact, Invoice, InvoiceLine, Sale

from ... import mappers
from ...models import PullCursor, RecordKind, SyncEvent, XeroLink, XeroRecordKind
from ..paging import id_chunks
from .contacts import contacts_by_xero_id
from .context import PullContext

INVOICE = XeroRecordKind.INVOICE


def pull_invoices(context: PullContext) -> None:
    for rows in context.reader.pages("get_invoices", "Invoices", PullCursor.Entity.INVOICES, where='Type=="ACCREC"'):
        apply_invoices(context, rows)


def fetch_invoices(context: PullContext, xero_ids) -> None:
    """Fetch these invoices from Xero by id (a call per URL's worth) and take them in."""
    for chunk in id_chunks(xero_ids):
        # page=1: paged invoice reads carry the line items
        apply_invoices(context, context.gateway.call("get_invoices", i_ds=chunk, page=1).get("Invoices", []))


def apply_invoices(context: PullContext, rows: list[dict]) -> None:
    contact_ids = {(row.get("Contact") or {}).get("ContactID") for row in rows} - {None}
    contacts = contacts_by_xero_id(context, contact_ids)
    invoice_ids = [row.get("InvoiceID") for row in rows]
    sale_links = {str(link.xero_id): link for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.SALE, xero_id__in=invoice_ids)}
    # The page's invoices we hold and the sales they are, read once for the page, not once per invoice
    # (a full pull of 100,000 invoices made 300,000 queries fewer).
    held = {str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=_uuids(invoice_ids))}
    sales = _sales_of(context.tenant_id, rows, sale_links)
    # Whose figures this page can change: the contacts its invoices are on now, and those they were on
    # before (an invoice Xero moved to another contact leaves the old one's total).
    touched = {invoice.contact_id for invoice in held.values()} | {contact.pk for contact in contacts.values()}
    for row in rows:
        if row.get("Type", "ACCREC") != "ACCREC":
            continue
        with context.failures.taking_in(INVOICE, row, what=row.get("InvoiceNumber") or row.get("InvoiceID"),
                                        id_key="InvoiceID"):
            _apply_invoice(context, row, contacts, sale_links.get(str(row.get("InvoiceID"))),
                           held=held.get(str(row.get("InvoiceID"))), sales=sales)
    # Once per page, for all of them at once (the contacts list sorts and filters on these columns).
    contact_invoice_totals_refresh(touched)


def _sales_of(tenant_id, rows: list[dict], sale_links: dict[str, XeroLink]) -> dict:
    """The website sales of a page of invoices: by the sale's link, else by the invoice's number (a sale
    whose push outcome was lost). Keyed ("pk", id) and ("number", number).

    By number only a sale not yet known to be elsewhere in Xero: one linked to another invoice, or in
    conflict with the bookkeeper's invoice under its number, is not that invoice (its payments are not the
    sale's)."""
    linked = Sale.objects.in_bulk([link.local_id for link in sale_links.values()])
    numbers = {(row.get("InvoiceNumber") or "")[:255] for row in rows  # as mappers.invoice_fields_from_xero reads it
               if str(row.get("InvoiceID")) not in sale_links} - {""}
    by_number = Sale.objects.in_bulk(list(numbers), field_name="number") if numbers else {}
    if by_number:
        elsewhere = set(XeroLink.objects.filter(
            Q(xero_id__isnull=False) | Q(state=XeroLink.State.CONFLICT), tenant_id=tenant_id, kind=RecordKind.SALE,
            local_id__in=[sale.pk for sale in by_number.values()]).values_list("local_id", flat=True))
        by_number = {number: sale for number, sale in by_number.items() if sale.pk not in elsewhere}
    return {**{("pk", pk): sale for pk, sale in linked.items()},
            **{("number", number): sale for number, sale in by_number.items()}}


def _uuids(values) -> list[uuid.UUID]:
    """The values that are ids at all (a malformed one fails alone when its invoice is taken in)."""
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids


@transaction.atomic
def _apply_invoice(context: PullContext, row: dict, contacts: dict[str, Contact], sale_link: XeroLink | None, *,
                   held: Invoice | None, sales: dict) -> None:
    fields, lines = mappers.invoice_fields_from_xero(row)
    contact_id = str((row.get("Contact") or {}).get("ContactID"))
    contact = contacts.get(contact_id)
    if contact is None:
        reason = context.failures.reason(XeroRecordKind.CONTACT, contact_id) or "Xero did not return it"
        raise ValueError(f"its contact could not be brought in ({reason}); it is tried again at the next pull")
    sale = sales.get(("pk", sale_link.local_id)) if sale_link else sales.get(("number", fields["number"]))
    invoice = held or Invoice(xero_id=row["InvoiceID"])
    if invoice.pk and invoice.updated_in_xero_at >= fields["updated_in_xero_at"]:
        return  # seen already (the If-Modified-Since overlap re-reads the newest records)
    for name, value in {**fields, "contact": contact, "sale": sale}.items():
        setattr(invoice, name, value)
    # Xero's id is the only unique field, and `held` is the row that has it: no query to check it again.
    invoice.full_clean(exclude=["sale", "contact"], validate_unique=False)
    invoice.save()
    if held is not None:
        invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=invoice, **line) for line in lines])
    if sale_link is not None:
        sale_link.xero_status = fields["status"]
        sale_link.last_pulled_at = timezone.now()
        sale_link.save(update_fields=["xero_status", "last_pulled_at"])
        SyncEvent.objects.create(link=sale_link, action="pulled",
                                 detail=f"Xero holds it {fields['status']}, {fields['amount_due']} due")
    context.report.pulled[INVOICE] += 1
