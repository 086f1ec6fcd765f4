"""A bookkeeper working in Xero, through the Python handle and through the admin API."""

from decimal import Decimal

import pytest
import requests

from xero_emulator import BookkeeperError

from .helpers import body, line


def test_a_bookkeepers_contact_edit_shows_up_in_the_api_as_a_change(emulator, xero):
    contact = xero.create_contact(Name="Ann")
    emulator.clock.advance(5)

    edited = emulator.edit_contact(contact["ContactID"], EmailAddress="ann@example.com")

    assert edited["EmailAddress"] == "ann@example.com"
    assert edited["UpdatedDateUTC"] != contact["UpdatedDateUTC"]
    since = emulator.clock.now().replace(microsecond=0).isoformat()
    changed = body(xero.get("/Contacts", headers={"If-Modified-Since": since}))["Contacts"]
    assert [c["EmailAddress"] for c in changed] == ["ann@example.com"]


def test_an_invoice_typed_into_xero_and_paid_from_the_bank_feed(emulator, xero):
    # Given a sale keyed straight into Xero (approved by default)
    sale = emulator.create_invoice(
        Contact={"Name": "Walk-in Customer"},
        LineItems=[line(quantity=2, unit_amount=50)],
        Reference="phone order",
    )
    assert (sale["Status"], sale["Total"], sale["InvoiceNumber"]) == (
        "AUTHORISED",
        Decimal("115.00"),
        "INV-0001",
    )

    # When the deposit is reconciled from the bank feed
    payment = emulator.record_bank_payment(
        sale["InvoiceID"],
        amount=Decimal("115.00"),
        account_code="091",
        date="2026-02-03",
        reference="DD 7781",
    )

    # Then the API shows the payment and the paid invoice
    assert (payment["Account"]["Code"], payment["IsReconciled"], payment["Reference"]) == (
        "091",
        True,
        "DD 7781",
    )
    listed = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert listed["Status"] == "PAID" and listed["Payments"][0]["PaymentID"] == payment["PaymentID"]


def test_void_and_archive(emulator, xero):
    sale = emulator.create_invoice(Contact={"Name": "Ann"}, LineItems=[line()])
    assert emulator.void_invoice(sale["InvoiceID"])["Status"] == "VOIDED"
    archived = emulator.archive_contact(sale["Contact"]["ContactID"])
    assert archived["ContactStatus"] == "ARCHIVED"
    assert body(xero.get("/Contacts"))["Contacts"] == []


def test_a_bookkeeper_is_held_to_xeros_rules(emulator):
    sale = emulator.create_invoice(Contact={"Name": "Ann"}, LineItems=[line()])
    with pytest.raises(BookkeeperError) as refused:
        emulator.record_bank_payment(sale["InvoiceID"], amount="20.00", account_code="090")
    assert refused.value.messages == ["Payment amount exceeds the amount outstanding on this document"]
    with pytest.raises(KeyError):
        emulator.void_invoice("INV-9999")


def test_state_views_hold_what_the_api_returns(emulator, xero):
    xero.create_invoice(lines=[line(quantity=3, unit_amount=9.99)])
    assert emulator.invoices()[0]["Total"] == Decimal("34.47")
    assert emulator.invoices() == body(xero.get("/Invoices", params={"page": 1}))["Invoices"]
    assert {a["Code"] for a in emulator.accounts()} >= {"090", "200", "620"}
    assert [t["TaxType"] for t in emulator.tax_rates()][0] == "OUTPUT2"


def test_the_admin_api_drives_the_same_actions_over_http(emulator):
    admin = emulator.base_url + "/_emulator"

    def post(path, payload=None):
        response = requests.post(admin + path, json=payload or {}, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    contact = post("/orgs/default/contacts", {"Name": "Ann"})
    post(f"/orgs/default/contacts/{contact['ContactID']}", {"EmailAddress": "ann@example.com"})
    sale = post(
        "/orgs/default/invoices", {"Contact": {"ContactID": contact["ContactID"]}, "LineItems": [line()]}
    )
    payment = post(
        f"/orgs/default/invoices/{sale['InvoiceID']}/payments", {"amount": "11.50", "account_code": "090"}
    )
    assert payment["Amount"] == 11.5

    tenant = post("/orgs", {"name": "Second Shop"})["tenant_id"]
    token = post("/tokens", {"tenant_ids": [tenant]})
    assert token["token_type"] == "Bearer" and isinstance(token["scope"], list)

    post("/limits", {"per_minute": 1})
    post("/faults", {"kind": "503", "count": 2})
    post("/faults/clear")
    before = emulator.clock.now()
    post("/clock/advance", {"seconds": 60})
    assert (emulator.clock.now() - before).total_seconds() >= 60

    refused = requests.post(f"{admin}/orgs/default/invoices/{sale['InvoiceID']}/void", json={}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["messages"] == [
        "The status VOIDED cannot be applied to the invoice because it has payments or credit notes allocated to it."
    ]
    assert requests.post(admin + "/nothing-here", json={}, timeout=5).status_code == 404

    post("/reset")
    assert emulator.contacts() == [] and len(emulator.orgs) == 1


def test_a_bookkeepers_credit_note_allocated_refunded_and_undone(emulator, xero):
    # Given a sale and a credit note typed into Xero (approved by default, numbered by Xero)
    sale = emulator.create_invoice(Contact={"Name": "Ann"}, LineItems=[line(quantity=1, unit_amount=100)])
    note = emulator.create_credit_note(Contact={"Name": "Ann"}, LineItems=[line(quantity=1, unit_amount=50)])
    assert (note["Status"], note["CreditNoteNumber"], note["Total"]) == ("AUTHORISED", "CN-0001", Decimal("57.50"))

    # When part is allocated to the sale and the rest refunded from the bank
    allocation = emulator.allocate_credit_note(note["CreditNoteID"], sale["InvoiceNumber"], "40.00", date="2026-02-01")
    refund = emulator.refund_credit_note(note["CreditNoteID"], "090", "17.50", reference="Refund 5")

    # Then the API shows the credited invoice and the spent credit note
    invoice = body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]
    assert (invoice["AmountCredited"], invoice["AmountDue"]) == (Decimal("40.00"), Decimal("75.00"))
    shown = emulator.credit_notes()[0]
    assert (shown["Status"], shown["RemainingCredit"]) == ("PAID", Decimal("0.00"))
    assert refund["PaymentType"] == "ARCREDITPAYMENT" and refund["Reference"] == "Refund 5"
    with pytest.raises(BookkeeperError) as refused:
        emulator.void_credit_note(note["CreditNoteID"])
    assert refused.value.messages == [
        "The status VOIDED cannot be applied to the credit note because it has payments or credit notes allocated to it."
    ]
    with pytest.raises(BookkeeperError) as refused:
        emulator.edit_invoice(sale["InvoiceID"], LineItems=[line(quantity=2, unit_amount=100)])
    assert refused.value.messages == ["This document cannot be edited as it has a payment or credit note allocated to it."]

    # When the bookkeeper undoes both, the credit note can be voided and the invoice edited
    assert emulator.delete_payment(refund["PaymentID"])["Status"] == "DELETED"
    assert emulator.delete_allocation(note["CreditNoteID"], allocation["AllocationID"])["IsDeleted"] is True
    assert emulator.void_credit_note(note["CreditNoteNumber"])["Status"] == "VOIDED"
    edited = emulator.edit_invoice(sale["InvoiceID"], LineItems=[line(quantity=2, unit_amount=100)])
    assert (edited["Total"], edited["AmountDue"]) == (Decimal("230.00"), Decimal("230.00"))


def test_the_admin_api_drives_credit_notes_over_http(emulator):
    admin = emulator.base_url + "/_emulator/orgs/default"

    def post(path, payload=None, status=200):
        response = requests.post(admin + path, json=payload or {}, timeout=5)
        assert response.status_code == status, response.text
        return response.json()

    sale = post("/invoices", {"Contact": {"Name": "Ann"}, "LineItems": [line(quantity=1, unit_amount=100)]})
    note = post("/creditnotes", {"Contact": {"Name": "Ann"}, "LineItems": [line()]})
    allocation = post(f"/creditnotes/{note['CreditNoteID']}/allocations",
                      {"invoice_id": sale["InvoiceID"], "amount": "5.00"})  # fmt: skip
    refund = post(f"/creditnotes/{note['CreditNoteID']}/refunds",
                  {"account_code": "090", "amount": "6.50", "reference": "R-1"})  # fmt: skip
    assert post(f"/creditnotes/{note['CreditNoteID']}/refunds", {"account_code": "090", "amount": "1"}, 400)[
        "messages"] == [
        "Payments can only be made against Authorised documents",
        "Payment amount exceeds the amount outstanding on this document",
    ]
    post(f"/payments/{refund['PaymentID']}/delete")
    post(f"/creditnotes/{note['CreditNoteID']}/allocations/{allocation['AllocationID']}/delete")
    assert post(f"/creditnotes/{note['CreditNoteID']}/void")["Status"] == "VOIDED"
    assert post(f"/invoices/{sale['InvoiceID']}", {"Reference": "phone"})["Reference"] == "phone"
    assert post("/creditnotes/CN-9999/void", status=404)["error"] == "no credit note CN-9999"
    page = requests.get(f"{admin}/creditnotes/{note['CreditNoteID']}", timeout=5)
    assert page.status_code == 200 and "Credit note CN-0001" in page.text
