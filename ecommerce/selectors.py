"""Read-side questions about sales: their totals, what has been paid, refunded and credited, what is due.

They use `sale.lines.all()`, `sale.receipts.all()`, `sale.payments.all()`, `sale.refunds.all()` and
`sale.credit_allocations.all()` (or the lists SALE_LIST_PREFETCH reads), so a caller listing many sales
prefetches those once (see SALE_PREFETCH) instead of running queries per sale.

How the money of a sale adds up (T its total):
- paid P: receipts taken on the website and payments recorded in Xero, less what the accounts deleted;
- refunds: each credits part of the sale (credit C), of which some money went back (M) and the rest was
  taken off what was due (allocated);
- credit allocated in Xero by the bookkeeper from a credit note of their own (B);
- due = T - P - allocated - B; money held = P - M.
"""

from collections.abc import Collection
from decimal import Decimal

from django.db import models

from . import totals
from .models import CreditAllocation, CreditNote, Payment, Sale

SALE_PREFETCH = ("lines", "receipts", "payments", "refunds", "credit_allocations__credit_note")

# The same rows for a page of a list, as plain lists on each sale (`listed_lines`, ...), which the questions
# below read first. A prefetch into the related managers builds a filtered queryset per sale and relation
# (500 for a page of 100 sales): about a third of the page's prefetch time.
LISTED = "listed_"
SALE_LIST_PREFETCH = (
    *(models.Prefetch(name, to_attr=LISTED + name) for name in ("lines", "receipts", "payments", "refunds")),
    models.Prefetch("credit_allocations", queryset=CreditAllocation.objects.select_related("credit_note"),
                    to_attr=LISTED + "credit_allocations"),
)


def _rows(sale: Sale, relation: str):
    """The sale's rows of `relation`: the list SALE_LIST_PREFETCH read, else its related manager's
    (prefetched with SALE_PREFETCH, or queried)."""
    listed = getattr(sale, LISTED + relation, None)
    return getattr(sale, relation).all() if listed is None else listed

# A credit note Xero holds as voided or deleted credits nothing.
CREDIT_NOTE_COUNTS = (CreditNote.Status.AUTHORISED, CreditNote.Status.PAID)


class PaymentState(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PART_PAID = "part_paid", "Part paid"
    PAID = "paid", "Paid"
    OVERPAID = "overpaid", "Overpaid"
    CREDITED = "credited", "Credited"
    PART_REFUNDED = "part_refunded", "Part refunded"
    REFUNDED = "refunded", "Refunded"
    CANCELLED = "cancelled", "Cancelled"


def sale_totals(sale: Sale) -> totals.Totals:
    figures = (
        totals.line_figures(
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            discount_rate=line.discount_rate,
            tax_rate=line.tax_rate,
            line_amount_type=sale.line_amount_type,
        )
        for line in _rows(sale, "lines")
    )
    return totals.sale_totals(figures, line_amount_type=sale.line_amount_type)


def sale_amount_paid(sale: Sale, *, excluding_receipts: Collection[int | None] = ()) -> Decimal:
    """Receipts taken on the website plus payments recorded in Xero, less those the accounts deleted."""
    received = sum(
        (receipt.amount for receipt in _rows(sale, "receipts")
         if receipt.pk not in excluding_receipts and receipt.removed_in_books_at is None), totals.ZERO
    )
    paid_in_xero = sum(
        (payment.amount for payment in _rows(sale, "payments")
         if payment.status == Payment.Status.ACTIVE and payment.credit_note_id is None),
        totals.ZERO,
    )
    return received + paid_in_xero


def sale_amount_refunded(sale: Sale) -> Decimal:
    """Money paid back to the customer by the website's refunds (less refund payments the accounts deleted)."""
    return sum((refund.amount_refunded for refund in _rows(sale, "refunds") if refund.removed_in_books_at is None),
               totals.ZERO)


def sale_amount_credited(sale: Sale) -> Decimal:
    """What the website's refunds credit of the sale, money paid back or not."""
    return sum((refund.credit_total for refund in _rows(sale, "refunds")), totals.ZERO)


def sale_credit_allocated_in_xero(sale: Sale) -> Decimal:
    """Credit the bookkeeper applied to the sale's invoice in Xero from credit notes the website did not make
    (the website's own refunds are counted from the refunds, once)."""
    return sum((allocation.amount for allocation in _rows(sale, "credit_allocations")
                if allocation.credit_note.refund_id is None and allocation.credit_note.status in CREDIT_NOTE_COUNTS),
               totals.ZERO)


def sale_amount_allocated(sale: Sale) -> Decimal:
    """Credit taken off what the sale owes: the website's refunds' allocations and the bookkeeper's credits."""
    return (sum((refund.amount_allocated for refund in _rows(sale, "refunds")), totals.ZERO)
            + sale_credit_allocated_in_xero(sale))


def sale_amount_due(sale: Sale, *, excluding_receipts: Collection[int | None] = ()) -> Decimal:
    return (sale_totals(sale).total - sale_amount_paid(sale, excluding_receipts=excluding_receipts)
            - sale_amount_allocated(sale))


def sale_amount_held(sale: Sale) -> Decimal:
    """Money received and not paid back: the most a refund can give back."""
    return sale_amount_paid(sale) - sale_amount_refunded(sale)


def sale_amount_creditable(sale: Sale) -> Decimal:
    """What is left to credit: the total, less what refunds and the bookkeeper's credits already cover."""
    return sale_totals(sale).total - sale_amount_credited(sale) - sale_credit_allocated_in_xero(sale)


def sale_payment_state(sale: Sale) -> PaymentState:
    """The sale's state as a bookkeeper reads it. Money given back comes first (refunded or part refunded);
    then credit that settled it (credited); then what was paid against what is due."""
    if sale.status == Sale.Status.CANCELLED:
        return PaymentState.CANCELLED
    paid, refunded = sale_amount_paid(sale), sale_amount_refunded(sale)
    if refunded > 0:
        return PaymentState.REFUNDED if refunded >= paid else PaymentState.PART_REFUNDED
    allocated = sale_amount_allocated(sale)
    due = sale_totals(sale).total - paid - allocated  # sale_amount_due's, from the sums already made
    if allocated > 0 and due == 0:
        return PaymentState.CREDITED
    if due < 0:
        return PaymentState.OVERPAID
    if due == 0:
        return PaymentState.PAID
    if paid == 0 and allocated == 0:
        return PaymentState.UNPAID
    return PaymentState.PART_PAID
