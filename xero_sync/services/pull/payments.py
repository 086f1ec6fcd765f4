"""Pulling payments into the accounts set to pull (a bank feed's deposits, say), as website payments."""

from django.db import transaction

from ecommerce.models import Invoice, Payment, PaymentMethod

from ... import mappers
from ...models import PullCursor, RecordKind, XeroLink, XeroRecordKind
from ..paging import id_chunks
from .context import PullContext
from .invoices import apply_invoices

PAYMENT = XeroRecordKind.PAYMENT


def pull_payments(context: PullContext) -> None:
    for rows in context.reader.pages("get_payments", "Payments", PullCursor.Entity.PAYMENTS):
        apply_payments(context, rows)


def fetch_payments(context: PullContext, xero_ids) -> None:
    """Fetch these payments from Xero, one call each (Xero reads payments by id one at a time)."""
    for payment_id in sorted(xero_ids):
        apply_payments(context, context.gateway.call("get_payment", payment_id=payment_id).get("Payments", []))


def apply_payments(context: PullContext, rows: list[dict]) -> None:
    pulling = context.config.pulling_accounts
    ours = {str(xero_id) for xero_id in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.RECEIPT, xero_id__in=[row.get("PaymentID") for row in rows]
    ).values_list("xero_id", flat=True)}
    wanted = [
        row for row in rows
        if row.get("PaymentType", "ACCRECPAYMENT") == "ACCRECPAYMENT"
        and str(row.get("PaymentID")) not in ours  # pushed from a receipt: it is already counted
        and mappers.receipt_id_from_reference(row.get("Reference")) is None
        and (row.get("Account") or {}).get("Code") in pulling
    ]
    invoice_ids = {(row.get("Invoice") or {}).get("InvoiceID") for row in wanted} - {None}
    invoices = {str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=invoice_ids)}
    missing = invoice_ids - set(invoices)
    for chunk in id_chunks(missing):
        apply_invoices(context, context.gateway.call("get_invoices", i_ds=chunk).get("Invoices", []))
    invoices.update({str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=missing)})
    methods = {method.pk: method for method in PaymentMethod.objects.filter(pk__in=pulling.values())}
    for row in wanted:
        with context.failures.taking_in(PAYMENT, row, what=row.get("Reference") or row.get("PaymentID"),
                                        id_key="PaymentID"):
            _apply_payment(context, row, invoices, methods[pulling[row["Account"]["Code"]]])


@transaction.atomic
def _apply_payment(context: PullContext, row: dict, invoices: dict[str, Invoice], method: PaymentMethod) -> None:
    fields = mappers.payment_fields_from_xero(row)
    invoice = invoices.get(str((row.get("Invoice") or {}).get("InvoiceID")))
    if invoice is None:
        raise ValueError("it is not on a sales invoice Xero returned")
    payment = Payment.objects.filter(xero_id=row["PaymentID"]).first() or Payment(xero_id=row["PaymentID"])
    if payment.pk and payment.updated_in_xero_at >= fields["updated_in_xero_at"]:
        return
    for name, value in {**fields, "invoice": invoice, "sale": invoice.sale, "payment_method": method}.items():
        setattr(payment, name, value)
    payment.full_clean(exclude=["invoice", "sale", "payment_method"])
    payment.save()
    context.report.pulled[PAYMENT] += 1
