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
