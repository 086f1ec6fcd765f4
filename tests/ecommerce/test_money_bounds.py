"""Issue 16 item 9: no sale goes beyond what the accounts can hold. A line, and a sale's total, come to at
most totals.MAX_AMOUNT (below 10^12, to the cent): the columns holding the website's copy of Xero's invoices,
and exact in the doubles Xero's JSON carries. Quantities and unit prices are bounded by their own columns.
Over the bound the services refuse the save, saying which line and by how much; nothing is stored."""

from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from ecommerce import selectors, services
from ecommerce.models import Invoice, InvoiceLine, LineAmountType, Sale, SaleLine
from ecommerce.totals import MAX_AMOUNT
from tests.ecommerce.factories import a_contact, a_sale

pytestmark = pytest.mark.django_db


def a_line(quantity: str = "1", unit_amount: str = "10.00", **fields) -> dict:
    return {"description": "Gold bar", "quantity": D(quantity), "unit_amount": D(unit_amount), **fields}


def test_the_bound_is_what_the_copies_of_xeros_invoices_can_hold():
    for field in (Invoice._meta.get_field("total"), InvoiceLine._meta.get_field("line_amount")):
        assert field.max_digits - field.decimal_places == len(str(int(MAX_AMOUNT)))
        assert D(10) ** (field.max_digits - field.decimal_places) - MAX_AMOUNT == D("0.01")


def test_a_line_coming_to_more_than_the_accounts_hold_is_refused_and_nothing_is_stored():
    contact = a_contact()
    # 1,000 x 9,999,999,999 = 9,999,999,999,000: each figure fits its column, their product does not
    with pytest.raises(ValidationError) as refused:
        services.sale_create(contact=contact, line_amount_type=LineAmountType.NO_TAX,
                             lines=[a_line(), a_line("1000", "9999999999")])
    assert refused.value.message_dict == {"line 2": [
        "This line comes to 9,999,999,999,000.00; a line can come to at most 999,999,999,999.99."]}
    assert not Sale.objects.exists() and not SaleLine.objects.exists()


def test_a_line_at_the_bound_is_taken():
    sale = a_sale(line_amount_type=LineAmountType.NO_TAX, lines=[a_line("100", "9999999999.9999")])
    assert selectors.sale_totals(sale).total == MAX_AMOUNT


def test_a_sale_whose_lines_add_up_beyond_the_bound_is_refused():
    lines = [a_line("100", "6000000000"), a_line("100", "6000000000")]
    with pytest.raises(ValidationError, match=r"The sale comes to 1,200,000,000,000.00; a sale can come to at "
                                              r"most 999,999,999,999.99\. Split it into several sales\."):
        a_sale(line_amount_type=LineAmountType.NO_TAX, lines=lines)
    assert not Sale.objects.exists()


def test_tax_added_on_top_counts_towards_the_bound():
    # 100 x 9,000,000,000 + 15% tax on top = 1,035,000,000,000.00
    with pytest.raises(ValidationError, match="The sale comes to 1,035,000,000,000.00"):
        a_sale(line_amount_type=LineAmountType.EXCLUSIVE, lines=[a_line("100", "9000000000", tax_rate=D("15"))])


def test_an_edit_taking_a_sale_beyond_the_bound_is_refused_and_the_sale_stays_as_it_was():
    sale = a_sale(line_amount_type=LineAmountType.INCLUSIVE, lines=[a_line("100", "9000000000", tax_rate=D("15"))])
    [line] = sale.lines.all()

    # when the quantity is raised
    with pytest.raises(ValidationError, match="This line comes to 1,800,000,000,000.00"):
        services.sale_update(sale=sale, lines=[{"id": line.pk, **a_line("200", "9000000000", tax_rate=D("15"))}])
    # when the same line's prices become tax exclusive (the tax now comes on top)
    with pytest.raises(ValidationError, match="The sale comes to 1,035,000,000,000.00"):
        services.sale_update(sale=sale, line_amount_type=LineAmountType.EXCLUSIVE)

    # then the sale is as it was
    sale.refresh_from_db()
    assert sale.line_amount_type == LineAmountType.INCLUSIVE
    assert list(sale.lines.values_list("quantity", flat=True)) == [D("100")]
    assert selectors.sale_totals(sale).total == D("900000000000.00")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("quantity", "100000000000", "Ensure that there are no more than 10 digits before the decimal point."),
    ("unit_amount", "1e20", "Ensure that there are no more than 14 digits in total."),
    ("unit_amount", "1.00001", "Ensure that there are no more than 4 decimal places."),
])
def test_quantities_and_unit_prices_are_bounded_by_their_columns(field, value, message):
    with pytest.raises(ValidationError, match=message):
        a_sale(lines=[a_line(**{field: value})])
    assert not Sale.objects.exists()
