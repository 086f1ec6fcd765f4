"""Pulling payments into the accounts set to pull (a bank feed's deposits, say), as website payments, and
refunds on credit notes; and noticing when the bookkeeper deletes a payment or refund the website pushed.

A pushed payment deleted in Xero is not deleted here either: its receipt (or refund) is marked deleted in
the accounts, stops counting in the sale's money, and its link says so until staff send it again.
"""

from django.db import transaction
from django.utils import timezone

from ecommerce.models import CreditNote, Invoice, Payment, PaymentMethod, Receipt, Refund
from ecommerce.services import removed_in_books_set

from ... import mappers
from ...models import PullCursor, RecordKind, SyncEvent, XeroLink, XeroRecordKind
from ..paging import id_chunks
from .context import PullContext
from .credit_notes import fetch_credit_notes
from .invoices import apply_invoices

PAYMENT = XeroRecordKind.PAYMENT
State = XeroLink.State
# The website records behind the payments the push makes, by link kind.
PUSHED_PAYMENTS = {RecordKind.RECEIPT: Receipt, RecordKind.REFUND_PAYMENT: Refund}


def pull_payments(context: PullContext) -> None:
    for rows in context.reader.pages("get_payments", "Payments", PullCursor.Entity.PAYMENTS):
        apply_payments(context, rows)


def fetch_payments(context: PullContext, xero_ids) -> None:
    """Fetch these payments from Xero, one call each (Xero reads payments by id one at a time)."""
    for payment_id in sorted(xero_ids):
        apply_payments(context, context.gateway.call("get_payment", payment_id=payment_id).get("Payments", []))


def apply_payments(context: PullContext, rows: list[dict]) -> None:
    pulling = context.config.pulling_accounts
    ours = {str(link.xero_id): link for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind__in=list(PUSHED_PAYMENTS),
        xero_id__in=[row.get("PaymentID") for row in rows])}
    for row in rows:
        link = ours.get(str(row.get("PaymentID")))
        if link is not None:
            _reflect_pushed(context, row, link)
    wanted = [
        row for row in rows
        if row.get("PaymentType", "ACCRECPAYMENT") in ("ACCRECPAYMENT", "ARCREDITPAYMENT")
        and str(row.get("PaymentID")) not in ours  # pushed from a receipt or refund: it is already counted
        and mappers.receipt_id_from_reference(row.get("Reference")) is None
        and mappers.refund_number_from_reference(row.get("Reference")) is None
        and (row.get("Account") or {}).get("Code") in pulling
    ]
    on_credit_notes = [row for row in wanted if mappers.payment_credit_note_id(row)]
    on_invoices = [row for row in wanted if not mappers.payment_credit_note_id(row)]
    invoice_ids = {(row.get("Invoice") or {}).get("InvoiceID") for row in on_invoices} - {None}
    invoices = {str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=invoice_ids)}
    missing = invoice_ids - set(invoices)
    for chunk in id_chunks(missing):
        apply_invoices(context, context.gateway.call("get_invoices", i_ds=chunk, page=1).get("Invoices", []))
    invoices.update({str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=missing)})
    credit_notes = _credit_notes_refunded(context, on_credit_notes)
    methods = {method.pk: method for method in PaymentMethod.objects.filter(pk__in=pulling.values())}
    for row in wanted:
        with context.failures.taking_in(PAYMENT, row, what=row.get("Reference") or row.get("PaymentID"),
                                        id_key="PaymentID"):
            _apply_payment(context, row, invoices, credit_notes, methods[pulling[row["Account"]["Code"]]])


def _credit_notes_refunded(context: PullContext, rows: list[dict]) -> dict[str, CreditNote]:
    wanted = {mappers.payment_credit_note_id(row) for row in rows}
    found = {str(note.xero_id): note for note in CreditNote.objects.filter(xero_id__in=wanted)}
    if wanted - set(found):
        fetch_credit_notes(context, wanted - set(found))
        found.update({str(note.xero_id): note for note in CreditNote.objects.filter(xero_id__in=wanted - set(found))})
    return found


def _reflect_pushed(context: PullContext, row: dict, link: XeroLink) -> None:
    """A payment the push made: when the bookkeeper deleted it in Xero, its receipt or refund stops counting."""
    if row.get("Status") != "DELETED" or link.state == State.DELETED:
        return
    record = PUSHED_PAYMENTS[link.kind].objects.filter(pk=link.local_id).first()
    with transaction.atomic():
        if record is not None:
            removed_in_books_set(record=record, removed=True)
        link.state = State.DELETED
        link.xero_status = "DELETED"
        link.last_error = ("The bookkeeper deleted this payment in Xero, so the website no longer counts it. "
                           "Send it again to record it in Xero anew, or leave it deleted.")
        link.error_by = XeroLink.ErrorBy.XERO  # Xero's own record of it says so
        link.last_pulled_at = timezone.now()
        link.save(update_fields=["state", "xero_status", "last_error", "error_by", "last_pulled_at"])
        SyncEvent.objects.create(link=link, action="deleted in Xero", detail=f"Payment {link.xero_id} deleted in Xero")
    context.report.pulled[PAYMENT] += 1


@transaction.atomic
def _apply_payment(context: PullContext, row: dict, invoices: dict[str, Invoice], credit_notes: dict[str, CreditNote],
                   method: PaymentMethod) -> None:
    fields = mappers.payment_fields_from_xero(row)
    credit_note_id = mappers.payment_credit_note_id(row)
    invoice = None if credit_note_id else invoices.get(str((row.get("Invoice") or {}).get("InvoiceID")))
    credit_note = credit_notes.get(credit_note_id) if credit_note_id else None
    if invoice is None and credit_note is None:
        raise ValueError("it is not on a sales invoice or credit note Xero returned")
    payment = Payment.objects.filter(xero_id=row["PaymentID"]).first() or Payment(xero_id=row["PaymentID"])
    if payment.pk and payment.updated_in_xero_at >= fields["updated_in_xero_at"]:
        return
    # A refund on a credit note gives money back; it is not a payment on the sale (the credit note's
    # allocation, if any, is what changes what the sale owes).
    for name, value in {**fields, "invoice": invoice, "credit_note": credit_note,
                        "sale": invoice.sale if invoice else None, "payment_method": method}.items():
        setattr(payment, name, value)
    payment.full_clean(exclude=["invoice", "sale", "payment_method", "credit_note"])
    payment.save()
    context.report.pulled[PAYMENT] += 1
