"""Every body the emulator answered (and every body the tests sent) against Xero's official OpenAPI
spec, through the project's contract checker (tests/xero_contract.py)."""

import pytest

from tests.support import XERO_SPEC_PATH, need
from tests.xero_contract import XeroContract

from .helpers import body, invoice, line

pytestmark = pytest.mark.spec


def test_a_session_of_reads_writes_and_errors_keeps_to_the_spec(emulator, xero):
    need(XERO_SPEC_PATH.exists(), f"the Xero spec is not at {XERO_SPEC_PATH}")
    # Given a session touching every endpoint, with successes and Xero's error answers
    sale = xero.create_invoice(
        Reference="web order",
        lines=[line(quantity=2, unit_amount=19.99, DiscountRate=10), line(tax_type="NONE")],
    )
    payment = body(xero.pay(sale["InvoiceID"], 10, Reference="card"))["Payments"][0]
    xero.post(f"/Payments/{payment['PaymentID']}", {"Status": "DELETED"})
    xero.post(
        "/Payments", {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 5}
    )
    xero.put(
        "/Contacts",
        {"Contacts": [{"Name": "Ann Customer"}, {"Name": "Bob"}]},
        params={"summarizeErrors": "false"},
    )
    xero.post("/Contacts", {"Contacts": [{"Name": "Bob", "EmailAddress": "bob@example.com"}]})
    xero.put(
        "/Invoices",
        {"Invoices": [invoice(), invoice(lines=[line(account_code="999")])]},
        params={"summarizeErrors": "false"},
    )
    assert xero.put("/Invoices", {"Invoices": [invoice(lines=[line(account_code="999")])]}).status_code == 400
    xero.post(f"/Invoices/{sale['InvoiceID']}", {"Invoices": [{"Reference": "changed"}]})
    for path, params in [
        ("/Contacts", {"page": 1}),
        ("/Contacts", {"where": "IsCustomer==true"}),
        ("/Invoices", {"page": 1, "pageSize": 10}),
        ("/Invoices", {"summaryOnly": "true"}),
        (f"/Invoices/{sale['InvoiceID']}", {}),
        ("/Payments", {}),
        (f"/Payments/{payment['PaymentID']}", {}),
        ("/Accounts", {}),
        ("/TaxRates", {}),
        ("/Organisation", {}),
    ]:
        assert xero.get(path, params=params).status_code == 200

    # Then no request or response body breaks Xero's schemas
    contract = XeroContract.load(XERO_SPEC_PATH)
    problems = [problem for call in emulator.calls for problem in contract.errors_for_call(call)]
    assert problems == []
    assert len(emulator.calls) >= 19
