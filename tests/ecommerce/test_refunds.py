"""Refunds and cancellations in the shop: what may be given back, what a refund credits, and the sale's
payment state as a bookkeeper reads it. No Xero here: the push and pull of refunds are in
tests/xero_sync/test_refunds.py."""

from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from ecommerce import selectors, services
from ecommerce.models import Refund, RefundLine, Sale
from ecommerce.selectors import PaymentState
from tests.ecommerce.factories import a_payment_method, a_sale

pytestmark = pytest.mark.django_db


PREFETCH = selectors.SALE_PREFETCH


@pytest.fixture(autouse=True, params=["SALE_PREFETCH", "SALE_LIST_PREFETCH"])
def read_as(request, monkeypatch):
    """Every figure here is asked of the sale read as a sale's page reads it and as a list's page does."""
    monkeypatch.setitem(globals(), "PREFETCH", getattr(selectors, request.param))


def fresh(sale: Sale) -> Sale:
    return Sale.objects.prefetch_related(*PREFETCH).get(pk=sale.pk)


def state(sale: Sale) -> PaymentState:
    return selectors.sale_payment_state(fresh(sale))


def three_caps() -> Sale:
    """3 x 33.33, 15% tax inclusive: 99.99, of which 13.04 tax."""
    return a_sale(lines=[{"description": "Cap", "quantity": D("3"), "unit_amount": D("33.33"), "tax_rate": D("15"),
                          "tax_code": "GST"}])


def paid(sale: Sale, amount: str | None = None) -> Sale:
    total = selectors.sale_totals(fresh(sale)).total
    services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=D(amount) if amount else total)
    return sale


def test_a_whole_refund_credits_the_sale_line_for_line_and_gives_all_the_money_back():
    sale = paid(three_caps())
    refund = services.refund_record(sale=sale, payment_method=a_payment_method())
    assert (refund.number, refund.credit_total, refund.credit_tax) == ("CN-000001", D("99.99"), D("13.04"))
    assert (refund.amount_refunded, refund.amount_allocated) == (D("99.99"), D("0.00"))
    [line] = refund.lines.all()
    assert (line.quantity, line.unit_amount, line.tax_code) == (D("3"), D("33.33"), "GST")
    assert state(sale) == PaymentState.REFUNDED


def test_refunding_one_line_of_three_credits_that_quantity_at_the_sale_price():
    sale = paid(three_caps())
    [cap] = sale.lines.all()
    refund = services.refund_record(sale=sale, payment_method=a_payment_method(), lines=[{"line": cap, "quantity": D("1")}])
    assert (refund.credit_total, refund.credit_tax) == (D("33.33"), D("4.35"))
    assert state(sale) == PaymentState.PART_REFUNDED
    with pytest.raises(ValidationError, match="3 is more than the 2 left to refund of its 3"):
        services.refund_record(sale=sale, payment_method=a_payment_method(), lines=[{"line": cap, "quantity": D("3")}])


def test_an_amount_is_shared_across_the_sales_tax_codes_and_adds_up_exactly():
    sale = paid(a_sale(lines=[
        {"description": "Jacket", "quantity": D("1"), "unit_amount": D("100.00"), "tax_rate": D("15"), "tax_code": "GST"},
        {"description": "Export box", "quantity": D("1"), "unit_amount": D("50.00"), "tax_rate": D("0"),
         "tax_code": "ZERO"},
    ]))
    refund = services.refund_record(sale=sale, payment_method=a_payment_method(), amount=D("10.00"))
    lines = sorted(refund.lines.all(), key=lambda line: line.tax_code)
    assert [(line.tax_code, line.unit_amount) for line in lines] == [("GST", D("6.67")), ("ZERO", D("3.33"))]
    assert refund.credit_total == D("10.00")
    assert refund.credit_tax == D("0.87")  # 6.67 x 15/115, rounded; the zero-rated share carries none


@pytest.mark.parametrize(("amount", "words"), [
    (D("100.00"), "more than the 99.99 received"),
    (D("0"), "must be more than zero"),
    (D("-5"), "must be more than zero"),
    (D("1.005"), "at most two decimal places"),
])
def test_a_refund_that_does_not_fit_is_refused_and_nothing_is_stored(amount, words):
    sale = paid(three_caps())
    with pytest.raises(ValidationError, match=words):
        services.refund_record(sale=sale, payment_method=a_payment_method(), amount=amount)
    assert not Refund.objects.exists() and not RefundLine.objects.exists()


def test_nothing_can_be_refunded_on_a_draft_or_an_unpaid_sale():
    with pytest.raises(ValidationError, match="is a draft"):
        services.refund_record(sale=a_sale(confirm=False), payment_method=a_payment_method())
    with pytest.raises(ValidationError, match="Nothing was received"):
        services.refund_record(sale=three_caps(), payment_method=a_payment_method())


def test_part_of_a_part_paid_sale_can_be_refunded_up_to_what_was_received():
    sale = paid(three_caps(), "40.00")
    with pytest.raises(ValidationError, match="more than the 40.00 received"):
        services.refund_record(sale=sale, payment_method=a_payment_method(), amount=D("40.01"))
    services.refund_record(sale=sale, payment_method=a_payment_method(), amount=D("15.00"))
    assert state(sale) == PaymentState.PART_REFUNDED
    assert selectors.sale_amount_held(fresh(sale)) == D("25.00")


def test_cancelling_an_unpaid_sale_just_cancels_it():
    sale = services.sale_cancel(sale=three_caps())
    assert sale.status == Sale.Status.CANCELLED and not sale.refunds.exists()
    assert state(sale) == PaymentState.CANCELLED


def test_a_sale_with_money_received_is_not_cancelled_without_saying_how_the_money_goes_back():
    sale = paid(three_caps(), "40.00")
    with pytest.raises(ValidationError, match="has 40.00 received. Refund it first, or choose 'Cancel and refund'"):
        services.sale_cancel(sale=sale)
    assert fresh(sale).status == Sale.Status.CONFIRMED


def test_cancel_and_refund_of_a_part_paid_sale_gives_back_what_was_paid_and_credits_the_rest():
    sale = paid(three_caps(), "40.00")
    services.sale_cancel(sale=sale, refund_to=a_payment_method())
    [refund] = fresh(sale).refunds.all()
    assert refund.cancels_sale
    assert (refund.credit_total, refund.amount_refunded, refund.amount_allocated) == (D("99.99"), D("40.00"),
                                                                                      D("59.99"))
    sale = fresh(sale)
    assert sale.status == Sale.Status.CANCELLED
    assert selectors.sale_amount_due(sale) == 0 and selectors.sale_amount_held(sale) == 0


def test_a_refunded_sale_keeps_its_lines_and_contact():
    sale = paid(three_caps())
    [cap] = sale.lines.all()
    services.refund_record(sale=sale, payment_method=a_payment_method(), amount=D("5.00"))
    with pytest.raises(ValidationError, match="has refunds, so its lines can no longer change"):
        services.sale_update(sale=sale, lines=[{"id": cap.pk, "description": "Cap", "quantity": D("4"),
                                                "unit_amount": D("33.33"), "tax_rate": D("15"), "tax_code": "GST"}])
    services.sale_update(sale=sale, notes="Customer called")  # a note is still fine
    assert fresh(sale).notes == "Customer called"


def test_a_receipt_deleted_in_the_accounts_stops_counting_until_sent_again():
    sale = paid(three_caps())
    receipt = sale.receipts.get()
    services.removed_in_books_set(record=receipt, removed=True)
    assert state(sale) == PaymentState.UNPAID
    services.removed_in_books_set(record=receipt, removed=False)
    assert state(sale) == PaymentState.PAID
