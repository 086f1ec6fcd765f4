"""Payments: only on AUTHORISED invoices, never above AmountDue, into a bank (or payment-enabled) account;
immutable; deletion reopens the invoice (§8)."""

from decimal import Decimal

import pytest

from .helpers import body, first_error, line

D = Decimal


@pytest.fixture
def sale(xero) -> dict:
    """An approved invoice for 115.00 (100.00 + 15% GST)."""
    return xero.create_invoice(InvoiceNumber="WEB-1001", lines=[line(quantity=1, unit_amount=100)])


def test_a_full_payment_marks_the_invoice_paid(emulator, xero, sale):
    # Given a part payment
    part = xero.pay(sale["InvoiceID"], 15, Date="2026-01-05", Reference="card 1")
    assert part.status_code == 200
    payment = body(part)["Payments"][0]
    assert (payment["Status"], payment["PaymentType"], payment["Amount"]) == (
        "AUTHORISED",
        "ACCRECPAYMENT",
        D("15.00"),
    )
    assert (payment["Reference"], payment["Date"]) == ("card 1", "/Date(1767571200000+0000)/")
    assert payment["Invoice"]["InvoiceID"] == sale["InvoiceID"]
    after_part = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert (after_part["Status"], after_part["AmountPaid"], after_part["AmountDue"]) == (
        "AUTHORISED",
        D("15.00"),
        D("100.00"),
    )

    # When the rest is paid (the amount arriving as a float)
    assert xero.pay(sale["InvoiceID"], 100.0, Date="2026-01-06").status_code == 200

    # Then the invoice is PAID, with both payments listed on it
    paid = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert (paid["Status"], paid["AmountDue"], paid["AmountPaid"]) == ("PAID", D("0.00"), D("115.00"))
    assert [p["Amount"] for p in paid["Payments"]] == [D("15.00"), D("100.00")]
    assert paid["FullyPaidOnDate"] == "/Date(1767657600000+0000)/"


def test_payments_are_only_made_against_authorised_invoices(xero):
    draft = xero.create_invoice(Status="DRAFT")
    response = xero.pay(draft["InvoiceID"], 1)
    assert response.status_code == 400
    assert first_error(response) == "Payments can only be made against Authorised documents"


def test_a_payment_may_not_exceed_the_amount_due(xero, sale):
    response = xero.pay(sale["InvoiceID"], 115.01)
    assert first_error(response) == "Payment amount exceeds the amount outstanding on this document"

    xero.pay(sale["InvoiceID"], 115)
    again = xero.pay(sale["InvoiceID"], 1)
    messages = [e["Message"] for e in body(again)["Elements"][0]["ValidationErrors"]]
    assert messages == [
        "Payments can only be made against Authorised documents",
        "Payment amount exceeds the amount outstanding on this document",
    ]


def test_a_payment_amount_must_be_positive(xero, sale):
    assert first_error(xero.pay(sale["InvoiceID"], 0)) == "Payment amount must be greater than zero."


@pytest.mark.parametrize(
    ("account", "accepted"),
    [
        ({"Code": "090"}, True),
        ({"Code": "091"}, True),
        ({"Code": "620"}, True),
        ({"Code": "200"}, False),
        ({"Code": "610"}, False),
        ({"Code": "999"}, False),
    ],
)
def test_the_account_must_be_a_bank_account_or_open_to_payments(xero, sale, account, accepted):
    payment = {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Account": account, "Amount": 10}
    response = xero.put("/Payments", {"Payments": [payment]})
    if accepted:
        assert response.status_code == 200
    else:
        assert first_error(response) == "Account must be valid."


def test_the_account_may_be_given_by_id_and_must_be_given(emulator, xero, sale):
    bank = next(a for a in emulator.accounts() if a["Code"] == "090")
    by_id = {
        "Invoice": {"InvoiceID": sale["InvoiceID"]},
        "Account": {"AccountID": bank["AccountID"]},
        "Amount": 10,
    }
    assert xero.put("/Payments", {"Payments": [by_id]}).status_code == 200

    missing = {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 10}
    assert first_error(xero.put("/Payments", {"Payments": [missing]})) == (
        "You must specify an Account code or Account ID for the payment"
    )


def test_a_payment_finds_its_invoice_by_number(xero, sale):
    payment = {"Invoice": {"InvoiceNumber": "WEB-1001"}, "Account": {"Code": "090"}, "Amount": 115}
    assert xero.put("/Payments", {"Payments": [payment]}).status_code == 200
    unknown = {**payment, "Invoice": {"InvoiceNumber": "WEB-9999"}}
    assert first_error(xero.put("/Payments", {"Payments": [unknown]})) == "Invoice could not be found"


def test_put_payments_is_a_batch_honouring_summarize_errors(emulator, xero, sale):
    good = {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 10}
    bad = {**good, "Amount": 1000}

    response = xero.put("/Payments", {"Payments": [good, bad]}, params={"summarizeErrors": "false"})

    assert response.status_code == 200
    elements = body(response)["Payments"]
    assert [e["StatusAttributeString"] for e in elements] == ["OK", "ERROR"]
    assert elements[1]["HasValidationErrors"] is True
    assert len(emulator.payments()) == 1


def test_post_payments_creates_one_payment_and_answers_400_on_error(xero, sale):
    payment = {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 10}
    assert xero.post("/Payments", payment).status_code == 200
    refused = xero.post("/Payments", {**payment, "Amount": 500})
    assert refused.status_code == 400 and body(refused)["Type"] == "ValidationException"


def test_deleting_a_payment_reopens_the_invoice_and_moves_both_updated_dates(emulator, xero, sale):
    # Given a fully paid invoice
    payment = body(xero.pay(sale["InvoiceID"], 115))["Payments"][0]
    paid = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert paid["Status"] == "PAID"

    # When its payment is deleted, later
    emulator.clock.advance(5)
    response = xero.post(f"/Payments/{payment['PaymentID']}", {"Status": "DELETED"})

    # Then the payment is DELETED and still listed
    assert response.status_code == 200
    deleted = body(response)["Payments"][0]
    assert deleted["Status"] == "DELETED"
    assert deleted["UpdatedDateUTC"] != payment["UpdatedDateUTC"]
    listed = body(xero.get("/Payments"))["Payments"]
    assert [(p["PaymentID"], p["Status"]) for p in listed] == [(payment["PaymentID"], "DELETED")]

    # And the invoice is open again, its UpdatedDateUTC moved
    reopened = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert (reopened["Status"], reopened["AmountDue"], reopened["Payments"]) == (
        "AUTHORISED",
        D("115.00"),
        [],
    )
    assert reopened["UpdatedDateUTC"] != paid["UpdatedDateUTC"]
    assert "FullyPaidOnDate" not in reopened


def test_a_wrapped_delete_body_is_accepted_too(xero, sale):
    payment = body(xero.pay(sale["InvoiceID"], 10))["Payments"][0]
    response = xero.post(f"/Payments/{payment['PaymentID']}", {"Payments": [{"Status": "DELETED"}]})
    assert body(response)["Payments"][0]["Status"] == "DELETED"


def test_payments_cannot_be_edited_nor_deleted_twice(xero, sale):
    payment = body(xero.pay(sale["InvoiceID"], 10))["Payments"][0]
    url = f"/Payments/{payment['PaymentID']}"

    edit = xero.post(url, {"Amount": 5})
    assert edit.status_code == 400
    assert first_error(edit) == "Payments cannot be edited. A payment can only be deleted."

    xero.post(url, {"Status": "DELETED"})
    assert first_error(xero.post(url, {"Status": "DELETED"})) == "This payment has already been deleted."


def test_a_payment_is_found_by_id(xero, sale):
    payment = body(xero.pay(sale["InvoiceID"], 10))["Payments"][0]
    assert body(xero.get(f"/Payments/{payment['PaymentID']}"))["Payments"][0]["Amount"] == D("10.00")
    assert xero.get("/Payments/00000000-0000-0000-0000-000000000000").status_code == 404
