"""Pulling every sales credit note Xero holds (the website's refunds and the bookkeeper's own), with their
allocations to invoices: a credit note the bookkeeper allocates to a website sale's invoice shows on the
sale (credited); voids and deletions in Xero show as the copy's status, never as a deletion here."""

from django.db import transaction
from django.utils import timezone

from ecommerce.models import Contact, CreditAllocation, CreditNote, Invoice, Refund

from ... import mappers
from ...models import PullCursor, RecordKind, SyncEvent, XeroLink, XeroRecordKind
from ..paging import id_chunks
from .contacts import contacts_by_xero_id
from .context import PullContext
from .invoices import apply_invoices

CREDIT_NOTE = XeroRecordKind.CREDIT_NOTE


def pull_credit_notes(context: PullContext) -> None:
    for rows in context.reader.pages("get_credit_notes", "CreditNotes", PullCursor.Entity.CREDIT_NOTES,
                                     where='Type=="ACCRECCREDIT"', unitdp=4):
        apply_credit_notes(context, rows)


def fetch_credit_notes(context: PullContext, xero_ids) -> None:
    """Fetch these credit notes from Xero by id, a URL's worth of ids a call, and take them in."""
    for chunk in id_chunks(xero_ids):
        where = " OR ".join(f'CreditNoteID==Guid("{xero_id}")' for xero_id in chunk)
        apply_credit_notes(context, context.gateway.call("get_credit_notes", where=where, unitdp=4).get(
            "CreditNotes", []))


def apply_credit_notes(context: PullContext, rows: list[dict]) -> None:
    rows = [row for row in rows if row.get("Type", "ACCRECCREDIT") == "ACCRECCREDIT"]
    if not rows:
        return
    contacts = contacts_by_xero_id(context, {(row.get("Contact") or {}).get("ContactID") for row in rows} - {None})
    refund_links = {str(link.xero_id): link for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.REFUND, xero_id__in=[row.get("CreditNoteID") for row in rows])}
    invoices = _invoices_allocated_to(context, rows)
    for row in rows:
        with context.failures.taking_in(CREDIT_NOTE, row, what=row.get("CreditNoteNumber") or row.get("CreditNoteID"),
                                        id_key="CreditNoteID"):
            _apply_credit_note(context, row, contacts, invoices, refund_links.get(str(row.get("CreditNoteID"))))


def _invoices_allocated_to(context: PullContext, rows: list[dict]) -> dict[str, Invoice]:
    """The website's copies of the invoices these credit notes are allocated to, fetching any not seen yet."""
    wanted = {str((allocation.get("Invoice") or {}).get("InvoiceID")) for row in rows
              for allocation in row.get("Allocations") or [] if (allocation.get("Invoice") or {}).get("InvoiceID")}
    invoices = {str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=wanted)}
    missing = wanted - set(invoices)
    for chunk in id_chunks(missing):
        apply_invoices(context, context.gateway.call("get_invoices", i_ds=chunk, page=1).get("Invoices", []))
    invoices.update({str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=missing)})
    return invoices


@transaction.atomic
def _apply_credit_note(context: PullContext, row: dict, contacts: dict[str, Contact], invoices: dict[str, Invoice],
                       refund_link: XeroLink | None) -> None:
    fields, allocations = mappers.credit_note_fields_from_xero(row)
    contact = contacts.get(str((row.get("Contact") or {}).get("ContactID")))
    if contact is None:
        raise ValueError("its contact could not be brought in; it is tried again at the next pull")
    credit_note = CreditNote.objects.filter(xero_id=row["CreditNoteID"]).first() or CreditNote(xero_id=row["CreditNoteID"])
    if credit_note.pk and credit_note.updated_in_xero_at >= fields["updated_in_xero_at"]:
        return  # seen already (the If-Modified-Since overlap re-reads the newest records)
    refund = Refund.objects.filter(pk=refund_link.local_id).first() if refund_link else None
    for name, value in {**fields, "contact": contact, "refund": refund}.items():
        setattr(credit_note, name, value)
    credit_note.full_clean(exclude=["contact", "refund"])
    credit_note.save()
    credit_note.allocations.all().delete()
    CreditAllocation.objects.bulk_create([
        CreditAllocation(credit_note=credit_note, invoice=invoices.get(str(allocation["invoice_xero_id"])),
                         sale=getattr(invoices.get(str(allocation["invoice_xero_id"])), "sale", None),
                         amount=allocation["amount"], date=allocation["date"])
        for allocation in allocations])
    if refund_link is not None:
        refund_link.xero_status = fields["status"]
        refund_link.last_pulled_at = timezone.now()
        refund_link.save(update_fields=["xero_status", "last_pulled_at"])
        SyncEvent.objects.create(link=refund_link, action="pulled",
                                 detail=f"Xero holds it {fields['status']}, {fields['remaining_credit']} credit left")
    context.report.pulled[CREDIT_NOTE] += 1
