"""Pulling every sales invoice Xero holds, with its lines, whoever typed it."""

from django.db import transaction
from django.utils import timezone

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
    sale_links = {str(link.xero_id): link for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.SALE, xero_id__in=[row.get("InvoiceID") for row in rows])}
    for row in rows:
        if row.get("Type", "ACCREC") != "ACCREC":
            continue
        with context.failures.taking_in(INVOICE, row, what=row.get("InvoiceNumber") or row.get("InvoiceID"),
                                        id_key="InvoiceID"):
            _apply_invoice(context, row, contacts, sale_links.get(str(row.get("InvoiceID"))))


@transaction.atomic
def _apply_invoice(context: PullContext, row: dict, contacts: dict[str, Contact], sale_link: XeroLink | None) -> None:
    fields, lines = mappers.invoice_fields_from_xero(row)
    contact_id = str((row.get("Contact") or {}).get("ContactID"))
    contact = contacts.get(contact_id)
    if contact is None:
        reason = context.failures.reason(XeroRecordKind.CONTACT, contact_id) or "Xero did not return it"
        raise ValueError(f"its contact could not be brought in ({reason}); it is tried again at the next pull")
    sale = Sale.objects.filter(pk=sale_link.local_id).first() if sale_link else (
        Sale.objects.filter(number=fields["number"]).first() if fields["number"] else None)
    invoice = Invoice.objects.filter(xero_id=row["InvoiceID"]).first() or Invoice(xero_id=row["InvoiceID"])
    if invoice.pk and invoice.updated_in_xero_at >= fields["updated_in_xero_at"]:
        return  # seen already (the If-Modified-Since overlap re-reads the newest records)
    for name, value in {**fields, "contact": contact, "sale": sale}.items():
        setattr(invoice, name, value)
    invoice.full_clean(exclude=["sale", "contact"])
    invoice.save()
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create([InvoiceLine(invoice=invoice, **line) for line in lines])
    if sale_link is not None:
        sale_link.xero_status = fields["status"]
        sale_link.last_pulled_at = timezone.now()
        sale_link.save(update_fields=["xero_status", "last_pulled_at"])
        SyncEvent.objects.create(link=sale_link, action="pulled",
                                 detail=f"Xero holds it {fields['status']}, {fields['amount_due']} due")
    context.report.pulled[INVOICE] += 1
