"""The shop's write services: what they store, and the bad inputs they refuse without saving anything."""

import datetime
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from ecommerce import selectors, services
from ecommerce.models import Contact, LineAmountType, Receipt, Sale, SaleLine
from ecommerce.totals import Totals
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale

pytestmark = pytest.mark.django_db


def test_contact_display_name_prefers_the_company():
    person = a_contact(first_name="Ben", last_name="Ngata")
    firm = a_contact(first_name="Ben", last_name="Ngata", company_name="Harbour Cafe Ltd", email="a@b.nz")
    assert (person.display_name, firm.display_name) == ("Ben Ngata", "Harbour Cafe Ltd")


def test_a_contact_needs_some_name():
    with pytest.raises(ValidationError, match="first name, a last name or a company name"):
        services.contact_create(email="nobody@example.com")
    assert Contact.objects.count() == 0


def test_unknown_contact_fields_are_refused_not_ignored():
    with pytest.raises(ValidationError, match="Unknown contact field"):
        services.contact_create(first_name="Mia", nickname="M")


def test_sale_numbers_are_generated_in_sequence():
    first, second = a_sale(), a_sale()
    assert first.number == "S-000001" and second.number == "S-000002"


def test_sale_create_stores_lines_and_totals_the_xero_way():
    # given a tax-inclusive sale with a discounted line and shipping
    sale = a_sale(line_amount_type=LineAmountType.INCLUSIVE, lines=[
        {"description": "Mug", "quantity": D("3"), "unit_amount": D("9.99"), "tax_rate": D("15")},
        {"description": "Hand cream", "quantity": D("3"), "unit_amount": D("18.3333"), "tax_rate": D("15"),
         "discount_rate": D("12.5")},
        {"kind": "shipping", "description": "Courier", "unit_amount": D("8.50"), "tax_rate": D("15")},
    ])
    # then lines keep their order and the totals are per-line rounded:
    # 29.97 (tax 3.91) + 48.12 (tax 6.28) + 8.50 (tax 1.11) = 86.59 incl. 11.30 tax
    assert [line.description for line in sale.lines.all()] == ["Mug", "Hand cream", "Courier"]
    assert selectors.sale_totals(sale) == Totals(subtotal=D("75.29"), total_tax=D("11.30"), total=D("86.59"))
    assert sale.status == Sale.Status.CONFIRMED


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"quantity": D("-1")}, "Quantity must be more than zero."),
        ({"quantity": D("0")}, "Quantity must be more than zero."),
        ({"unit_amount": D("-5")}, "The unit price cannot be negative."),
        ({"discount_rate": D("120")}, "A discount cannot be more than 100%."),
        ({"tax_rate": D("-15")}, "A tax rate cannot be negative."),
        ({"description": ""}, "This field cannot be blank."),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_saved(line, message):
    contact = a_contact()
    good = {"description": "Beanie", "quantity": D("1"), "unit_amount": D("10"), "tax_rate": D("15")}
    with pytest.raises(ValidationError) as refused:
        services.sale_create(contact=contact, lines=[good, {**good, **line}])
    assert message in str(refused.value) and "line 2" in str(refused.value)
    assert (Sale.objects.count(), SaleLine.objects.count()) == (0, 0)


def test_unknown_currency_is_refused():
    with pytest.raises(ValidationError, match="XYZ is not a currency Xero knows"):
        a_sale(currency="XYZ")
    assert Sale.objects.count() == 0


def test_currency_defaults_to_the_shop_currency_and_is_upper_cased(settings):
    settings.SHOP_CURRENCY = "AUD"
    assert a_sale().currency == "AUD"
    assert a_sale(currency="nzd").currency == "NZD"


def test_due_date_before_sale_date_is_refused():
    with pytest.raises(ValidationError, match="due date cannot be before"):
        a_sale(date=datetime.date(2026, 5, 10), due_date=datetime.date(2026, 5, 1))


def test_a_sale_without_lines_cannot_be_confirmed():
    sale = a_sale(confirm=False, lines=[])
    with pytest.raises(ValidationError, match="has no lines"):
        services.sale_confirm(sale=sale)
    sale.refresh_from_db()
    assert sale.status == Sale.Status.DRAFT


def test_a_confirmed_sale_cannot_go_back_to_draft_nor_lose_its_lines():
    sale = a_sale()
    with pytest.raises(ValidationError, match="confirmed sale cannot become draft. Cancel it instead."):
        services.sale_update(sale=sale, status=Sale.Status.DRAFT)
    with pytest.raises(ValidationError, match="needs at least one line"):
        services.sale_update(sale=sale, lines=[])
    assert sale.lines.count() == 1


def test_sale_update_replaces_lines_and_fields():
    sale = a_sale()
    services.sale_update(sale=sale, reference="PO-77", lines=[
        {"description": "Socks", "quantity": D("2"), "unit_amount": D("24.995"), "tax_rate": D("15")},
    ])
    sale.refresh_from_db()
    assert sale.reference == "PO-77"
    assert [(line.description, line.position) for line in sale.lines.all()] == [("Socks", 1)]


def test_a_cancelled_sale_is_frozen():
    sale = services.sale_cancel(sale=a_sale())
    with pytest.raises(ValidationError, match="is cancelled"):
        services.sale_update(sale=sale, reference="late edit")


def test_receipts_mark_the_sale_part_paid_then_paid():
    sale = a_sale()  # 2 x 39.95 incl. GST = 79.90
    card = a_payment_method()
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.UNPAID
    services.receipt_record(sale=sale, payment_method=card, amount=D("50.00"))
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.PART_PAID
    assert selectors.sale_amount_due(sale) == D("29.90")
    services.receipt_record(sale=sale, payment_method=card, amount=D("29.90"))
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.PAID


def test_receipt_on_a_draft_sale_is_refused():
    sale = a_sale(confirm=False)
    with pytest.raises(ValidationError, match="only be taken on confirmed sales"):
        services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=D("10"))
    assert Receipt.objects.count() == 0


def test_receipt_larger_than_the_amount_due_needs_explicit_overpayment():
    sale = a_sale()
    card = a_payment_method()
    with pytest.raises(ValidationError, match=r"80\.00 is more than the 79\.90 still due"):
        services.receipt_record(sale=sale, payment_method=card, amount=D("80.00"))
    assert Receipt.objects.count() == 0
    services.receipt_record(sale=sale, payment_method=card, amount=D("80.00"), overpayment_allowed=True)
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.OVERPAID


@pytest.mark.parametrize("amount", [D("0"), D("-5.00")])
def test_receipt_amount_must_be_positive(amount):
    with pytest.raises(ValidationError, match="more than zero"):
        services.receipt_record(sale=a_sale(), payment_method=a_payment_method(), amount=amount)


def test_receipt_with_an_inactive_method_is_refused():
    retired = services.payment_method_create(name="Cheque", code="cheque", active=False)
    with pytest.raises(ValidationError, match="Cheque is not active"):
        services.receipt_record(sale=a_sale(), payment_method=retired, amount=D("1.00"))


def test_payments_deleted_in_xero_no_longer_count():
    from django.utils import timezone

    from ecommerce.models import Payment

    sale = a_sale()
    payment = Payment.objects.create(
        xero_id="6f0f8e4c-97e4-4c4a-9d35-1ad0b0a0c001", sale=sale, amount=D("79.90"),
        date=datetime.date(2026, 11, 1), updated_in_xero_at=timezone.now(),
    )
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.PAID
    payment.status = Payment.Status.DELETED
    payment.save()
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.UNPAID


# --- lines are written in bulk, and say so ---------------------------------------------------------------


@pytest.fixture
def lines_replaced():
    """The sales ecommerce.signals.sale_lines_replaced was sent for, in order."""
    from ecommerce.signals import sale_lines_replaced

    sent = []

    def receiver(sender, sale, **kwargs):
        sent.append((sender, sale.pk))

    sale_lines_replaced.connect(receiver, dispatch_uid="test-lines-replaced")
    yield sent
    sale_lines_replaced.disconnect(dispatch_uid="test-lines-replaced")


def _row(line: SaleLine, **changes) -> dict:
    return {"id": line.pk, **{name: getattr(line, name) for name in services.LINE_FIELDS}, **changes}


def test_sale_update_changes_named_lines_in_place_adds_new_ones_and_removes_the_rest(lines_replaced):
    sale = a_sale(lines=[{"description": name, "unit_amount": D("10")} for name in ("Mug", "Socks", "Tea")])
    mug, socks, tea = sale.lines.all()
    lines_replaced.clear()
    # when the socks go, the tea moves first with a new price, the mug stays, and a towel is added
    services.sale_update(sale=sale, lines=[_row(tea, unit_amount=D("12")), _row(mug),
                                           {"description": "Towel", "unit_amount": D("14.49")}])
    # then the kept lines keep their ids, in the new order; the removed one is gone
    stored = list(sale.lines.values_list("pk", "position", "description", "unit_amount"))
    assert stored[:2] == [(tea.pk, 1, "Tea", D("12")), (mug.pk, 2, "Mug", D("10"))]
    assert stored[2][1:] == (3, "Towel", D("14.49")) and stored[2][0] not in (mug.pk, socks.pk, tea.pk)
    # and receivers were told once
    assert lines_replaced == [(Sale, sale.pk)]


def test_sale_update_writes_no_line_and_sends_nothing_when_the_lines_are_as_stored(lines_replaced):
    sale = a_sale()
    [line] = sale.lines.all()
    lines_replaced.clear()
    services.sale_update(sale=sale, lines=[_row(line)], reference="PO-1")
    assert lines_replaced == []
    assert sale.lines.get().pk == line.pk


def test_sale_update_writes_ten_lines_in_as_many_queries_as_one():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count: int) -> int:
        sale = a_sale()
        with CaptureQueriesContext(connection) as captured:
            services.sale_update(sale=sale, lines=[
                {"description": f"Item {n}", "unit_amount": D("9.99")} for n in range(count)])
        assert sale.lines.count() == count
        return len(captured.captured_queries)

    assert queries(10) == queries(1)


def test_sale_create_sends_lines_replaced_once(lines_replaced):
    sale = a_sale(lines=[{"description": "Mug", "unit_amount": D("9.99")}] * 3)
    assert lines_replaced == [(Sale, sale.pk)]


def test_a_line_of_another_sale_cannot_be_changed_through_this_one():
    other = a_sale()
    sale = a_sale(contact=other.contact)
    with pytest.raises(ValidationError, match="line 1"):
        services.sale_update(sale=sale, lines=[_row(other.lines.get(), description="Hijacked")])
    assert other.lines.get().description == "Merino beanie"


def test_a_draft_confirmed_through_sale_update_needs_a_line():
    sale = a_sale(confirm=False, lines=[])
    with pytest.raises(ValidationError, match="A confirmed sale needs at least one line."):
        services.sale_update(sale=sale, status=Sale.Status.CONFIRMED)
    services.sale_update(sale=sale, status=Sale.Status.CONFIRMED, lines=[{"description": "Mug",
                                                                          "unit_amount": D("9.99")}])
    assert Sale.objects.get().status == Sale.Status.CONFIRMED


def test_a_sale_is_never_stored_without_a_number():
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Sale.objects.create(contact=a_contact())  # not through sale_create: no number


# --- receipts: judged together, under the sale's lock -------------------------------------------------


def test_receipts_saved_together_are_judged_together():
    sale = a_sale()  # 79.90 due
    card = a_payment_method()
    fifty = {"payment_method": card, "amount": D("50.00")}
    with pytest.raises(ValidationError, match=r"These receipts add up to 100\.00, more than the 79\.90 still due"):
        services.receipts_save(sale=sale, record=[fifty, fifty])
    assert Receipt.objects.count() == 0
    services.receipts_save(sale=sale, record=[fifty, {**fifty, "overpayment_allowed": True}])
    assert selectors.sale_payment_state(sale) == selectors.PaymentState.OVERPAID


def test_a_receipt_removed_in_the_same_save_makes_room_for_its_replacement():
    sale = a_sale()
    card = a_payment_method()
    wrong = services.receipt_record(sale=sale, payment_method=card, amount=D("79.90"))
    services.receipts_save(sale=sale, record=[{"payment_method": card, "amount": D("79.90")}], remove=[wrong])
    assert list(Receipt.objects.values_list("amount", flat=True)) == [D("79.90")]
    assert Receipt.objects.get().pk != wrong.pk


def test_receipt_update_judges_a_new_amount_but_not_a_new_note():
    sale = a_sale()
    card = a_payment_method()
    receipt = services.receipt_record(sale=sale, payment_method=card, amount=D("79.90"))
    with pytest.raises(ValidationError, match=r"90\.00 is more than the 79\.90 still due"):
        services.receipt_update(receipt=receipt, amount=D("90.00"))
    services.sale_cancel(sale=sale, refund_to=card)  # cancelled and refunded in one step
    # the sale is cancelled now, which refuses receipts; a corrected reference on this one is still fine
    services.receipt_update(receipt=receipt, reference="ch_fixed")
    assert Receipt.objects.get().reference == "ch_fixed"
    with pytest.raises(ValidationError, match="only be taken on confirmed sales"):
        services.receipt_update(receipt=receipt, amount=D("10.00"))
