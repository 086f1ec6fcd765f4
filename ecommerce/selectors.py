"""Read-side questions about sales: their totals, what has been paid, what is still due.

They use `sale.lines.all()` / `sale.receipts.all()` / `sale.payments.all()`, so a caller listing many
sales prefetches those once (see SALE_PREFETCH) instead of running queries per sale.
"""

from collections.abc import Collection
from decimal import Decimal

from django.db import models

from . import totals
from .models import Payment, Sale

SALE_PREFETCH = ("lines", "receipts", "payments")


class PaymentState(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PART_PAID = "part_paid", "Part paid"
    PAID = "paid", "Paid"
    OVERPAID = "overpaid", "Overpaid"


def sale_totals(sale: Sale) -> totals.Totals:
    figures = (
        totals.line_figures(
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            discount_rate=line.discount_rate,
            tax_rate=line.tax_rate,
            line_amount_type=sale.line_amount_type,
        )
        for line in sale.lines.all()
    )
    return totals.sale_totals(figures, line_amount_type=sale.line_amount_type)


def sale_amount_paid(sale: Sale, *, excluding_receipts: Collection[int | None] = ()) -> Decimal:
    """Receipts taken on the website plus payments recorded in Xero (those not deleted there)."""
    received = sum(
        (receipt.amount for receipt in sale.receipts.all() if receipt.pk not in excluding_receipts), totals.ZERO
    )
    paid_in_xero = sum(
        (payment.amount for payment in sale.payments.all() if payment.status == Payment.Status.ACTIVE),
        totals.ZERO,
    )
    return received + paid_in_xero


def sale_amount_due(sale: Sale, *, excluding_receipts: Collection[int | None] = ()) -> Decimal:
    return sale_totals(sale).total - sale_amount_paid(sale, excluding_receipts=excluding_receipts)


def sale_payment_state(sale: Sale) -> PaymentState:
    total = sale_totals(sale).total
    paid = sale_amount_paid(sale)
    if paid > total:
        return PaymentState.OVERPAID
    if paid == total:
        return PaymentState.PAID
    if paid == 0:
        return PaymentState.UNPAID
    return PaymentState.PART_PAID
