"""Invoices: numbers, per-line rounding, validation, status transitions, edits blocked by payments,
UpdatedDateUTC (§4, §7). Figures are worked by hand in the comments."""

import re
from decimal import Decimal

import pytest

from .helpers import body, first_error, invoice, line

D = Decimal


def totals(saved: dict) -> tuple:
    return saved["SubTotal"], saved["TotalTax"], saved["Total"]


def test_exclusive_tax_is_computed_and_rounded_per_line(xero):
    # 3 x 9.99 = 29.97, tax 15% = 4.4955 -> 4.50
    # 1 x 0.05 = 0.05,  tax 15% = 0.0075 -> 0.01   (per invoice: 30.02 x 15% = 4.503 -> 4.50)
    # 2 x 12.50 = 25.00, no GST -> 0.00
    saved = xero.create_invoice(
        lines=[
            line(quantity=3, unit_amount=9.99),
            line(quantity=1, unit_amount=0.05),
            line(quantity=2, unit_amount=12.5, tax_type="NONE"),
        ]
    )

    assert [item["TaxAmount"] for item in saved["LineItems"]] == [D("4.50"), D("0.01"), D("0.00")]
    assert [item["LineAmount"] for item in saved["LineItems"]] == [D("29.97"), D("0.05"), D("25.00")]
    assert totals(saved) == (D("55.02"), D("4.51"), D("59.53"))
    assert saved["AmountDue"] == D("59.53") and saved["AmountPaid"] == D("0.00")


def test_inclusive_tax_is_backed_out_of_each_line(xero):
    # 1 x 10.00 incl.: tax = 10.00 x 15/115 = 1.3043 -> 1.30
    # 3 x 3.33 = 9.99 incl.: tax = 9.99 x 15/115 = 1.3030 -> 1.30   (per invoice: 19.99 x 15/115 = 2.607 -> 2.61)
    saved = xero.create_invoice(
        LineAmountTypes="Inclusive",
        lines=[line(quantity=1, unit_amount=10), line(quantity=3, unit_amount=3.33)],
    )

    assert [item["TaxAmount"] for item in saved["LineItems"]] == [D("1.30"), D("1.30")]
    assert totals(saved) == (D("17.39"), D("2.60"), D("19.99"))
    assert saved["LineAmountTypes"] == "Inclusive"


def test_no_tax_invoices_carry_no_tax(xero):
    saved = xero.create_invoice(LineAmountTypes="NoTax", lines=[line(quantity=2, unit_amount=7.5)])
    assert totals(saved) == (D("15.00"), D("0.00"), D("15.00"))
    assert saved["LineItems"][0]["TaxType"] == "NONE"


def test_discount_rate_and_discount_amount(xero):
    # 3 x 19.99 = 59.97, less 10% = 53.973 -> 53.97; tax 8.0955 -> 8.10
    rate = xero.create_invoice(lines=[line(quantity=3, unit_amount=19.99, DiscountRate=10)])
    assert rate["LineItems"][0]["LineAmount"] == D("53.97")
    assert totals(rate) == (D("53.97"), D("8.10"), D("62.07"))
    assert rate["TotalDiscount"] == D("6.00") and rate["IsDiscounted"] is True

    # 2 x 15.00 = 30.00, less 2.50 = 27.50; tax 4.125 -> 4.13
    amount = xero.create_invoice(lines=[line(quantity=2, unit_amount=15, DiscountAmount=2.5)])
    assert totals(amount) == (D("27.50"), D("4.13"), D("31.63"))


def test_line_amounts_round_half_up(xero):
    # 0.5 x 0.05 = 0.025 -> 0.03 (banker's rounding would give 0.02)
    saved = xero.create_invoice(lines=[line(quantity=0.5, unit_amount=0.05, tax_type="NONE")])
    assert saved["LineItems"][0]["LineAmount"] == D("0.03")


def test_unit_amounts_keep_four_places_only_with_unitdp_4(xero):
    lines = [line(quantity=7, unit_amount=1.2345)]

    # unitdp=4: 7 x 1.2345 = 8.6415 -> 8.64; tax 1.296 -> 1.30
    four = body(xero.put("/Invoices", {"Invoices": [invoice(lines=lines)]}, params={"unitdp": "4"}))[
        "Invoices"
    ][0]
    assert four["LineItems"][0]["UnitAmount"] == D("1.2345")
    assert totals(four) == (D("8.64"), D("1.30"), D("9.94"))

    # default: the unit amount is rounded first, 1.23 x 7 = 8.61; tax 1.2915 -> 1.29
    two = xero.create_invoice(lines=lines)
    assert two["LineItems"][0]["UnitAmount"] == D("1.23")
    assert totals(two) == (D("8.61"), D("1.29"), D("9.90"))

    # and a 4-dp invoice read without unitdp shows 2-dp unit amounts, same line amounts
    read = body(xero.get(f"/Invoices/{four['InvoiceID']}"))["Invoices"][0]
    assert read["LineItems"][0]["UnitAmount"] == D("1.23") and read["Total"] == D("9.94")


def test_a_line_amount_sent_alone_prices_the_line_and_a_wrong_one_is_refused(xero):
    alone = xero.create_invoice(
        lines=[{"Description": "Fee", "LineAmount": 40, "AccountCode": "200", "TaxType": "OUTPUT2"}]
    )
    assert (alone["LineItems"][0]["Quantity"], alone["LineItems"][0]["UnitAmount"]) == (
        D("1.0000"),
        D("40.00"),
    )

    wrong = xero.put(
        "/Invoices", {"Invoices": [invoice(lines=[line(quantity=3, unit_amount=9.99, LineAmount=30)])]}
    )
    assert wrong.status_code == 400
    assert first_error(wrong) == "The line amount 30.00 does not match the expected line amount 29.97."


def test_invoice_numbers_are_generated_in_sequence_and_must_be_unique_for_sales(xero):
    assert xero.create_invoice()["InvoiceNumber"] == "INV-0001"
    assert xero.create_invoice(InvoiceNumber="INV-0002")["InvoiceNumber"] == "INV-0002"
    assert xero.create_invoice()["InvoiceNumber"] == "INV-0003"  # the taken number is skipped

    xero.create_invoice(InvoiceNumber="WEB-1001")
    duplicate = xero.put("/Invoices", {"Invoices": [invoice(InvoiceNumber="web-1001")]})
    assert duplicate.status_code == 400 and first_error(duplicate) == "Invoice # must be unique."

    bill = xero.put(
        "/Invoices",
        {
            "Invoices": [
                invoice(
                    Type="ACCPAY",
                    InvoiceNumber="WEB-1001",
                    lines=[line(account_code="400", tax_type="INPUT2")],
                )
            ]
        },
    )
    assert bill.status_code == 200


@pytest.mark.parametrize(
    ("line_fields", "message"),
    [
        ({"AccountCode": None}, "Account code or ID must be specified."),
        ({"AccountCode": "999"}, "Account code '999' is not a valid code for this document."),
        ({"AccountCode": "090"}, "Account code '090' is not a valid code for this document."),
        (
            {"AccountCode": "880"},
            "Account code '880' has been archived or deleted. Each line item must reference a valid account.",
        ),
        (
            {"TaxType": "GST15"},
            "The TaxType code 'GST15' does not exist or cannot be used for this type of transaction.",
        ),
        ({"Description": None}, "Description needs to be specified for line items without an item."),
        ({"Quantity": -1}, "The quantity value '-1.0000' is invalid. Quantity must not be less than zero."),
    ],
)
def test_approved_invoice_lines_are_validated(xero, line_fields, message):
    bad_line = {key: value for key, value in {**line(), **line_fields}.items() if value is not None}

    response = xero.put("/Invoices", {"Invoices": [invoice(lines=[bad_line])]})

    assert response.status_code == 400
    assert first_error(response) == message
    assert body(response)["Elements"][0]["HasErrors"] is True


def test_a_draft_may_lack_account_codes_but_cannot_be_approved_without_them(xero):
    draft = xero.create_invoice(
        Status="DRAFT", lines=[{"Description": "Widget", "Quantity": 1, "UnitAmount": 10}]
    )
    assert draft["Status"] == "DRAFT"

    approve = xero.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "AUTHORISED"}]})
    assert approve.status_code == 400 and first_error(approve) == "Account code or ID must be specified."


def test_an_invoice_needs_a_contact_and_finds_it_by_id_number_or_name_or_creates_it(emulator, xero):
    missing = xero.put("/Invoices", {"Invoices": [invoice(Contact={})]})
    assert first_error(missing) == "A Contact must be specified for this type of transaction"

    ann = xero.create_contact(Name="Ann", ContactNumber="CUST-1")
    by_number = xero.create_invoice(Contact={"ContactNumber": "CUST-1"})
    by_name = xero.create_invoice(Contact={"Name": "ann"})
    created = xero.create_invoice(Contact={"Name": "Brand New Ltd", "EmailAddress": "new@example.com"})

    assert by_number["Contact"]["ContactID"] == by_name["Contact"]["ContactID"] == ann["ContactID"]
    new = next(c for c in emulator.contacts() if c["Name"] == "Brand New Ltd")
    assert new["ContactID"] == created["Contact"]["ContactID"]
    assert new["EmailAddress"] == "new@example.com" and new["IsCustomer"] is True


def test_status_transitions(xero):
    def set_status(saved, status):
        return xero.post(f"/Invoices/{saved['InvoiceID']}", {"Invoices": [{"Status": status}]})

    # DRAFT and SUBMITTED can be deleted
    assert (
        body(set_status(xero.create_invoice(Status="DRAFT"), "DELETED"))["Invoices"][0]["Status"] == "DELETED"
    )
    assert set_status(xero.create_invoice(Status="SUBMITTED"), "DELETED").status_code == 200

    # AUTHORISED cannot be deleted, only voided
    approved = xero.create_invoice()
    refused = set_status(approved, "DELETED")
    assert first_error(refused) == "Invoice not of valid status for modification"
    voided = set_status(approved, "VOIDED")
    assert body(voided)["Invoices"][0]["Status"] == "VOIDED" and body(voided)["Invoices"][0][
        "AmountDue"
    ] == D("0.00")

    # A voided invoice is final
    edit = xero.post(f"/Invoices/{approved['InvoiceID']}", {"Invoices": [{"Reference": "again"}]})
    assert first_error(edit) == "Invoice not of valid status for modification"

    # and an invoice cannot be created already paid
    paid = xero.put("/Invoices", {"Invoices": [invoice(Status="PAID")]})
    assert first_error(paid) == "Invoice not of valid status for creation"


def test_an_invoice_with_a_payment_cannot_be_edited_or_voided(emulator, xero):
    saved = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])  # total 115.00
    assert xero.pay(saved["InvoiceID"], 15).status_code == 200
    url = f"/Invoices/{saved['InvoiceID']}"

    edit = xero.post(url, {"Invoices": [{"LineItems": [line(quantity=2, unit_amount=100)]}]})
    assert (
        first_error(edit)
        == "This document cannot be edited as it has a payment or credit note allocated to it."
    )

    void = xero.post(url, {"Invoices": [{"Status": "VOIDED"}]})
    assert first_error(void) == (
        "The status VOIDED cannot be applied to the invoice because it has payments or credit notes allocated to it."
    )

    # The same lines sent again are no change, and the reference may still change
    same = xero.post(
        url, {"Invoices": [{"LineItems": [line(quantity=1, unit_amount=100)], "Reference": "PO 7"}]}
    )
    assert same.status_code == 200 and body(same)["Invoices"][0]["Reference"] == "PO 7"


def test_a_paid_invoice_cannot_go_back_to_authorised(xero):
    saved = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])
    xero.pay(saved["InvoiceID"], 115)

    response = xero.post(f"/Invoices/{saved['InvoiceID']}", {"Invoices": [{"Status": "AUTHORISED"}]})

    assert first_error(response) == (
        "The status AUTHORISED cannot be applied to the invoice because it has payments or credit notes allocated to it."
    )


def test_an_invoice_is_found_by_id_or_invoice_number(xero):
    saved = xero.create_invoice(InvoiceNumber="WEB-1001")
    assert body(xero.get("/Invoices/WEB-1001"))["Invoices"][0]["InvoiceID"] == saved["InvoiceID"]
    assert body(xero.get(f"/Invoices/{saved['InvoiceID']}"))["Invoices"][0]["InvoiceNumber"] == "WEB-1001"
    assert xero.get("/Invoices/WEB-9999").status_code == 404


def test_post_invoices_updates_by_id_or_sales_invoice_number(emulator, xero):
    saved = xero.create_invoice(InvoiceNumber="WEB-1001")

    by_number = xero.post("/Invoices", {"Invoices": [invoice(InvoiceNumber="WEB-1001", Reference="changed")]})
    by_id = xero.post("/Invoices", {"Invoices": [{"InvoiceID": saved["InvoiceID"], "Reference": "again"}]})

    assert body(by_number)["Invoices"][0]["InvoiceID"] == saved["InvoiceID"]
    assert body(by_id)["Invoices"][0]["Reference"] == "again"
    assert len(emulator.invoices()) == 1


def test_dates_are_accepted_in_every_client_format_and_written_the_xero_way(xero):
    for sent in ("2026-01-02", "2026-01-02T00:00:00", "/Date(1767312000000)/", "/Date(1767312000000+0000)/"):
        saved = xero.create_invoice(Date=sent, DueDate="2026-02-01")
        assert (saved["Date"], saved["DateString"]) == ("/Date(1767312000000+0000)/", "2026-01-02T00:00:00")
        assert saved["DueDateString"] == "2026-02-01T00:00:00"


def test_due_date_defaults_to_the_20th_of_the_following_month(xero):
    payload = invoice(Date="2026-12-05")
    del payload["DueDate"]
    saved = body(xero.put("/Invoices", {"Invoices": [payload]}))["Invoices"][0]
    assert saved["DueDateString"] == "2027-01-20T00:00:00"


def test_currency_defaults_to_the_base_currency_and_others_are_refused(xero):
    assert xero.create_invoice()["CurrencyCode"] == "NZD"
    response = xero.put("/Invoices", {"Invoices": [invoice(CurrencyCode="EUR")]})
    assert first_error(response) == "Organisation is not subscribed to currency EUR"


def test_updated_date_utc_is_ms_json_and_moves_on_every_change(emulator, xero):
    saved = xero.create_invoice()
    stamp = saved["UpdatedDateUTC"]
    assert re.fullmatch(r"/Date\(\d{13}\+0000\)/", stamp)
    millis = int(stamp[6:19])
    assert abs(millis / 1000 - emulator.clock.time()) < 5

    url = f"/Invoices/{saved['InvoiceID']}"
    emulator.clock.advance(10)
    changed = body(xero.post(url, {"Invoices": [{"Reference": "PO 1"}]}))["Invoices"][0]
    assert int(changed["UpdatedDateUTC"][6:19]) - millis >= 10000

    unchanged = body(xero.post(url, {"Invoices": [{"Reference": "PO 1"}]}))["Invoices"][0]
    assert unchanged["UpdatedDateUTC"] == changed["UpdatedDateUTC"]
