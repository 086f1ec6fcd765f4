"""Every body the emulator answered (and every body the tests sent) against Xero's official OpenAPI
spec, through the project's contract checker (tests/xero_contract.py)."""

import pytest

from tests.support import XERO_SPEC_PATH, need
from tests.xero_contract import XeroContract

from .helpers import body, credit_note, invoice, line

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
    # Credit notes, an allocation, a refund and their refusals
    notes = xero.put(
        "/CreditNotes",
        {"CreditNotes": [credit_note(CreditNoteNumber="CN-1"), credit_note(lines=[line(account_code="999")])]},
        params={"summarizeErrors": "false", "unitdp": 4},
    )
    note = body(notes)["CreditNotes"][0]
    xero.post("/CreditNotes", {"CreditNotes": [{"CreditNoteNumber": "CN-1", "Reference": "RMA"}]})
    xero.post(f"/CreditNotes/{note['CreditNoteID']}", {"CreditNotes": [{"Reference": "RMA 2"}]})
    assert xero.put("/CreditNotes", {"CreditNotes": [credit_note(CreditNoteNumber="CN-1")]}).status_code == 400
    allocation = body(xero.allocate(note["CreditNoteID"], sale["InvoiceID"], 5))["Allocations"][0]
    assert xero.allocate(note["CreditNoteID"], sale["InvoiceID"], 500).status_code == 400
    xero.allocate(note["CreditNoteID"], sale["InvoiceID"], 500, params={"summarizeErrors": "false"})
    refund = body(xero.refund(note["CreditNoteID"], 1, Reference="REFUND-1"))["Payments"][0]
    assert xero.refund(note["CreditNoteID"], 100).status_code == 400
    xero.post(f"/Payments/{refund['PaymentID']}", {"Status": "DELETED"})
    assert xero.request(
        "DELETE", f"/CreditNotes/{note['CreditNoteID']}/Allocations/{allocation['AllocationID']}"
    ).status_code == 200
    for path, params in [
        ("/Contacts", {"page": 1}),
        ("/Contacts", {"where": "IsCustomer==true"}),
        ("/Invoices", {"page": 1, "pageSize": 10}),
        ("/Invoices", {"summaryOnly": "true"}),
        (f"/Invoices/{sale['InvoiceID']}", {}),
        ("/Payments", {}),
        ("/Payments", {"where": 'Reference=="REFUND-1"'}),
        ("/CreditNotes", {}),
        ("/CreditNotes", {"page": 1, "pageSize": 10, "unitdp": 4}),
        (f"/CreditNotes/{note['CreditNoteID']}", {}),
        ("/CreditNotes/CN-1", {}),
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
    assert len(emulator.calls) >= 35
