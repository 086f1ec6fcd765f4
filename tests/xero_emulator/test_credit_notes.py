"""Credit notes, their allocations to invoices and refunds of them, as Xero has them (docs §8b): totals
computed like invoices, RemainingCredit and AmountCredited, PAID at zero, and the locks once money is
applied to a document."""

from decimal import Decimal

import pytest

from .helpers import body, credit_note, errors_of, first_error, invoice, line

D = Decimal
HAS_MONEY_APPLIED = "This document cannot be edited as it has a payment or credit note allocated to it."


@pytest.fixture
def sale(xero) -> dict:
    """An approved invoice for 115.00 (100.00 + 15% GST) to Ann Customer."""
    return xero.create_invoice(InvoiceNumber="WEB-1001", lines=[line(quantity=1, unit_amount=100)])


@pytest.fixture
def credit(xero) -> dict:
    """An approved credit note for 57.50 (50.00 + 15% GST) to Ann Customer."""
    return xero.create_credit_note(lines=[line(quantity=1, unit_amount=50)])


def test_a_batch_of_credit_notes_with_one_bad_one_saves_the_good_ones_and_says_why(emulator, xero):
    # Given a batch: a 33.33 x 3 tax-inclusive refund, one on an account that does not exist, one unnumbered
    batch = [
        credit_note(CreditNoteNumber="CN-000042", LineAmountTypes="Inclusive",
                    lines=[line(quantity=3, unit_amount=33.33)]),
        credit_note(lines=[line(account_code="999")]),
        credit_note(),
    ]  # fmt: skip

    # When it is sent with summarizeErrors=false
    response = xero.put("/CreditNotes", {"CreditNotes": batch}, params={"summarizeErrors": "false"})

    # Then the answer is 200 with every element: the bad one carries its ValidationErrors
    assert response.status_code == 200
    saved, bad, numbered = body(response)["CreditNotes"]
    assert [n["StatusAttributeString"] for n in (saved, bad, numbered)] == ["OK", "ERROR", "OK"]
    assert bad["HasErrors"] is True
    assert bad["ValidationErrors"] == [{"Message": "Account code '999' is not a valid code for this document."}]
    # Totals by Xero's rounding: tax backed out per line
    assert (saved["Total"], saved["TotalTax"], saved["SubTotal"]) == (D("99.99"), D("13.04"), D("86.95"))
    assert (saved["Type"], saved["Status"], saved["RemainingCredit"]) == ("ACCRECCREDIT", "AUTHORISED", D("99.99"))
    assert saved["Allocations"] == [] and saved["Payments"] == []
    # A credit note without a number gets the next one from the organisation's settings
    assert numbered["CreditNoteNumber"] == "CN-0001"
    assert [n["CreditNoteNumber"] for n in emulator.credit_notes()] == ["CN-000042", "CN-0001"]


def test_credit_note_numbers_are_unique_and_find_the_credit_note(xero, credit):
    duplicate = xero.put("/CreditNotes", {"CreditNotes": [credit_note(CreditNoteNumber=credit["CreditNoteNumber"])]})
    assert duplicate.status_code == 400
    assert first_error(duplicate) == "Credit Note # must be unique."

    # GET /CreditNotes/{id} takes the id or the number; POST /CreditNotes updates by number
    assert xero.credit_note_now(credit["CreditNoteNumber"])["CreditNoteID"] == credit["CreditNoteID"]
    updated = xero.post(
        "/CreditNotes", {"CreditNotes": [{"CreditNoteNumber": credit["CreditNoteNumber"], "Reference": "RMA 7"}]}
    )
    assert body(updated)["CreditNotes"][0]["CreditNoteID"] == credit["CreditNoteID"]
    assert xero.credit_note_now(credit["CreditNoteID"])["Reference"] == "RMA 7"
    unknown = xero.post("/CreditNotes", {"CreditNotes": [{"CreditNoteID": "00000000-0000-0000-0000-000000000000"}]})
    assert first_error(unknown) == "An existing Credit Note with the specified CreditNoteID could not be found"


def test_an_allocation_lowers_what_the_invoice_owes_and_pays_it_off_at_zero(emulator, xero, sale, credit):
    before = xero.invoice_now(sale["InvoiceID"])
    emulator.clock.advance(5)

    # When part of the credit note is allocated to the invoice
    response = xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], 50, date="2026-01-10")

    # Then the allocation comes back, and the invoice shows the credit
    assert response.status_code == 200, response.text
    allocation = body(response)["Allocations"][0]
    assert (allocation["Amount"], allocation["StatusAttributeString"]) == (D("50.00"), "OK")
    assert allocation["Invoice"]["InvoiceID"] == sale["InvoiceID"]
    assert allocation["CreditNote"]["CreditNoteID"] == credit["CreditNoteID"]
    after = xero.invoice_now(sale["InvoiceID"])
    assert (after["AmountDue"], after["AmountCredited"], after["AmountPaid"], after["Status"]) == (
        D("65.00"), D("50.00"), D("0.00"), "AUTHORISED"
    )  # fmt: skip
    assert [(c["CreditNoteID"], c["AppliedAmount"]) for c in after["CreditNotes"]] == [
        (credit["CreditNoteID"], D("50.00"))
    ]
    assert after["UpdatedDateUTC"] != before["UpdatedDateUTC"]
    note = xero.credit_note_now(credit["CreditNoteID"])
    assert note["RemainingCredit"] == D("7.50")
    assert [(a["AllocationID"], a["Amount"]) for a in note["Allocations"]] == [(allocation["AllocationID"], D("50.00"))]

    # When a payment settles the rest, the invoice is PAID
    assert xero.pay(sale["InvoiceID"], 65).status_code == 200
    assert xero.invoice_now(sale["InvoiceID"])["Status"] == "PAID"


def test_a_credit_note_allocated_in_full_is_paid_and_so_is_an_invoice_it_settles(xero, sale):
    whole = xero.create_credit_note(lines=[line(quantity=1, unit_amount=100)])  # 115.00

    assert xero.allocate(whole["CreditNoteID"], sale["InvoiceID"], "115.00", date="2026-01-11").status_code == 200

    note, paid = xero.credit_note_now(whole["CreditNoteID"]), xero.invoice_now(sale["InvoiceID"])
    assert (note["Status"], note["RemainingCredit"]) == ("PAID", D("0.00"))
    assert (paid["Status"], paid["AmountDue"], paid["FullyPaidOnDate"]) == (
        "PAID", D("0.00"), "/Date(1768089600000+0000)/"
    )  # fmt: skip


def test_an_allocation_above_the_amount_due_or_the_remaining_credit_is_refused(xero, sale, credit):
    # More than the credit note holds
    over_credit = xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], "57.51")
    assert over_credit.status_code == 400
    assert errors_of(over_credit) == ["Credit Note cannot be allocated as amount is greater than amount outstanding"]

    # More than the invoice still owes
    assert xero.pay(sale["InvoiceID"], 100).status_code == 200  # 15.00 left
    over_due = xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], 20)
    assert errors_of(over_due) == ["Credit Note cannot be allocated as amount is greater than amount outstanding"]

    # An invoice already paid off
    assert xero.pay(sale["InvoiceID"], 15).status_code == 200
    paid_off = xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], 1)
    assert errors_of(paid_off) == [
        "The invoice you are trying to allocate to has already been paid off",
        "Credit Note cannot be allocated as amount is greater than amount outstanding",
    ]
    assert xero.credit_note_now(credit["CreditNoteID"])["RemainingCredit"] == D("57.50")


def test_only_an_approved_credit_note_is_allocated_to_its_own_contacts_invoice(xero, sale):
    draft = xero.create_credit_note(Status="DRAFT")
    refused = xero.allocate(draft["CreditNoteID"], sale["InvoiceID"], 1)
    assert errors_of(refused) == ["Credit Note must be AUTHORISED before it can be allocated."]

    someone_else = xero.create_credit_note(contact_name="Bob Other")
    refused = xero.allocate(someone_else["CreditNoteID"], sale["InvoiceID"], 1)
    assert errors_of(refused) == ["Credit Note cannot be allocated to an invoice of another contact."]

    missing = xero.allocate(draft["CreditNoteID"], "00000000-0000-0000-0000-000000000000", 1)
    assert "Invoice could not be found" in errors_of(missing)
    assert xero.invoice_now(sale["InvoiceID"])["AmountCredited"] == D("0.00")


def test_allocations_in_a_batch_with_summarize_errors_false(xero, sale, credit):
    allocations = [
        {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 10, "Date": "2026-01-10"},
        {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 1000, "Date": "2026-01-10"},
        {"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 5, "Date": "someday"},
    ]

    response = xero.put(
        f"/CreditNotes/{credit['CreditNoteID']}/Allocations",
        {"Allocations": allocations},
        params={"summarizeErrors": "false"},
    )

    assert response.status_code == 200
    results = body(response)["Allocations"]
    assert [r["StatusAttributeString"] for r in results] == ["OK", "ERROR", "ERROR"]
    assert results[2]["ValidationErrors"] == [{"Message": "'someday' is not a valid date"}]
    assert xero.invoice_now(sale["InvoiceID"])["AmountCredited"] == D("10.00")

    # The spec makes an allocation's Date required
    undated = xero.put(f"/CreditNotes/{credit['CreditNoteID']}/Allocations",
                       {"Allocations": [{"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 5}]})  # fmt: skip
    assert (undated.status_code, errors_of(undated)) == (400, ["A Date must be specified for the allocation."])


def test_deleting_an_allocation_gives_the_credit_back_and_the_invoice_owes_again(xero, sale):
    whole = xero.create_credit_note(lines=[line(quantity=1, unit_amount=100)])  # 115.00
    allocation = body(xero.allocate(whole["CreditNoteID"], sale["InvoiceID"], 115))["Allocations"][0]

    deleted = xero.request("DELETE", f"/CreditNotes/{whole['CreditNoteID']}/Allocations/{allocation['AllocationID']}")

    assert deleted.status_code == 200 and body(deleted)["IsDeleted"] is True
    note, reopened = xero.credit_note_now(whole["CreditNoteID"]), xero.invoice_now(sale["InvoiceID"])
    assert (note["Status"], note["RemainingCredit"], note["Allocations"]) == ("AUTHORISED", D("115.00"), [])
    assert (reopened["Status"], reopened["AmountDue"], reopened["CreditNotes"]) == ("AUTHORISED", D("115.00"), [])
    again = xero.request("DELETE", f"/CreditNotes/{whole['CreditNoteID']}/Allocations/{allocation['AllocationID']}")
    assert again.status_code == 404


def test_a_refund_lowers_the_remaining_credit_and_is_refused_above_it(emulator, xero, credit):
    # When part of the credit is paid back from the bank account
    response = xero.refund(credit["CreditNoteID"], 20, Date="2026-01-12", Reference="REFUND-7")

    # Then the refund is an ARCREDITPAYMENT on the credit note, and its credit is lower
    assert response.status_code == 200, response.text
    refund = body(response)["Payments"][0]
    assert (refund["PaymentType"], refund["Amount"], refund["Reference"]) == ("ARCREDITPAYMENT", D("20.00"), "REFUND-7")
    assert refund["CreditNote"]["CreditNoteID"] == credit["CreditNoteID"]
    note = xero.credit_note_now(credit["CreditNoteID"])
    assert note["RemainingCredit"] == D("37.50")
    assert [p["PaymentID"] for p in note["Payments"]] == [refund["PaymentID"]]

    # More than is left is refused, as is a refund from an account that takes no payments
    over = xero.refund(credit["CreditNoteID"], "37.51")
    assert first_error(over) == "Payment amount exceeds the amount outstanding on this document"
    assert first_error(xero.refund(credit["CreditNoteID"], 1, account_code="200")) == "Account must be valid."

    # The rest, by number from the card clearing account, leaves the credit note PAID
    by_number = {"CreditNote": {"CreditNoteNumber": credit["CreditNoteNumber"]}, "Account": {"Code": "620"},
                 "Amount": "37.50", "Reference": "REFUND-8"}  # fmt: skip
    assert xero.put("/Payments", {"Payments": [by_number]}).status_code == 200
    paid = xero.credit_note_now(credit["CreditNoteID"])
    assert (paid["Status"], paid["RemainingCredit"]) == ("PAID", D("0.00"))
    assert first_error(xero.refund(credit["CreditNoteID"], 1)) == "Payments can only be made against Authorised documents"


def test_get_payments_lists_a_refund_with_its_credit_note_and_finds_it_by_reference(xero, sale, credit):
    xero.pay(sale["InvoiceID"], 10, Reference="CARD-1")
    xero.refund(credit["CreditNoteID"], 5, Reference="REFUND-9")

    listed = body(xero.get("/Payments"))["Payments"]
    assert [p["PaymentType"] for p in listed] == ["ACCRECPAYMENT", "ARCREDITPAYMENT"]
    refund = listed[1]
    # As Xero's own example shows a refund: its credit note under Invoice, typed ACCRECCREDIT; and under CreditNote
    assert (refund["Invoice"]["Type"], refund["Invoice"]["InvoiceID"], refund["Invoice"]["InvoiceNumber"]) == (
        "ACCRECCREDIT", credit["CreditNoteID"], credit["CreditNoteNumber"]
    )  # fmt: skip
    assert (refund["CreditNote"]["CreditNoteID"], refund["CreditNote"]["CreditNoteNumber"]) == (
        credit["CreditNoteID"], credit["CreditNoteNumber"]
    )  # fmt: skip

    found = body(xero.get("/Payments", params={"where": 'Reference=="REFUND-9"'}))["Payments"]
    assert [p["PaymentID"] for p in found] == [refund["PaymentID"]]
    typed = body(xero.get("/Payments", params={"where": 'PaymentType=="ARCREDITPAYMENT"'}))["Payments"]
    assert [p["PaymentID"] for p in typed] == [refund["PaymentID"]]


def test_a_deleted_refund_gives_the_credit_back_and_moves_the_credit_note(emulator, xero, credit):
    refund = body(xero.refund(credit["CreditNoteID"], "57.50"))["Payments"][0]
    assert xero.credit_note_now(credit["CreditNoteID"])["Status"] == "PAID"
    emulator.clock.advance(10)
    since = emulator.clock.now().replace(microsecond=0).isoformat()

    deleted = xero.post(f"/Payments/{refund['PaymentID']}", {"Status": "DELETED"})

    assert deleted.status_code == 200 and body(deleted)["Payments"][0]["Status"] == "DELETED"
    changed = body(xero.get("/CreditNotes", headers={"If-Modified-Since": since}))["CreditNotes"]
    assert [(n["CreditNoteID"], n["Status"], n["RemainingCredit"], n["Payments"]) for n in changed] == [
        (credit["CreditNoteID"], "AUTHORISED", D("57.50"), [])
    ]
    assert body(xero.get(f"/Payments/{refund['PaymentID']}"))["Payments"][0]["Status"] == "DELETED"


def test_a_credit_note_with_an_allocation_or_a_refund_is_neither_edited_nor_voided(xero, sale, credit):
    refunded = xero.create_credit_note()
    assert xero.refund(refunded["CreditNoteID"], 1).status_code == 200
    assert xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], 10).status_code == 200

    for note in (credit, refunded):
        url = f"/CreditNotes/{note['CreditNoteID']}"
        edit = xero.post(url, {"CreditNotes": [{"LineItems": [line(quantity=9, unit_amount=100)]}]})
        assert first_error(edit) == HAS_MONEY_APPLIED
        void = xero.post(url, {"CreditNotes": [{"Status": "VOIDED"}]})
        assert first_error(void) == (
            "The status VOIDED cannot be applied to the credit note because it has payments or credit notes "
            "allocated to it."
        )
        # A reference may still change
        assert xero.post(url, {"CreditNotes": [{"Reference": "RMA 9"}]}).status_code == 200


def test_a_credit_note_with_nothing_applied_is_voided_and_holds_no_credit(xero, sale, credit):
    voided = xero.post(f"/CreditNotes/{credit['CreditNoteID']}", {"CreditNotes": [{"Status": "VOIDED"}]})

    assert voided.status_code == 200
    note = body(voided)["CreditNotes"][0]
    assert (note["Status"], note["RemainingCredit"]) == ("VOIDED", D("0.00"))
    assert errors_of(xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], 1)) == [
        "Credit Note must be AUTHORISED before it can be allocated."
    ]
    assert first_error(xero.refund(credit["CreditNoteID"], 1)) == "Payments can only be made against Authorised documents"


def test_an_invoice_with_a_payment_or_an_allocation_cannot_be_voided_nor_edited(xero, credit):
    refused = (
        "The status VOIDED cannot be applied to the invoice because it has payments or credit notes allocated to it."
    )
    paid = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])
    credited = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])
    assert xero.pay(paid["InvoiceID"], 1).status_code == 200
    assert xero.allocate(credit["CreditNoteID"], credited["InvoiceID"], 1).status_code == 200

    for sale in (paid, credited):
        url = f"/Invoices/{sale['InvoiceID']}"
        assert first_error(xero.post(url, {"Invoices": [{"Status": "VOIDED"}]})) == refused
        edit = xero.post(url, {"Invoices": [{"LineItems": [line(quantity=2, unit_amount=100)]}]})
        assert first_error(edit) == HAS_MONEY_APPLIED
    assert xero.invoice_now(credited["InvoiceID"])["Status"] == "AUTHORISED"


def test_invoices_always_carry_amount_credited_and_credit_notes(xero):
    xero.create_invoice()
    for listed in (body(xero.get("/Invoices"))["Invoices"][0], body(xero.get("/Invoices", params={"page": 1}))[
            "Invoices"][0]):
        assert (listed["AmountCredited"], listed["CreditNotes"]) == (D("0.00"), [])


def test_get_credit_notes_pages_and_picks_changes_with_if_modified_since(emulator, xero, sale):
    for n in range(1, 6):
        xero.create_credit_note(CreditNoteNumber=f"CN-{n:06d}")
    emulator.clock.advance(10)
    since = emulator.clock.now().replace(microsecond=0).isoformat()
    changed = xero.create_credit_note(CreditNoteNumber="CN-000006", lines=[line(quantity=1, unit_amount=100)])

    # Paging two at a time, with line items on paged lists only
    first = body(xero.get("/CreditNotes", params={"page": 1, "pageSize": 2}))
    assert first["pagination"] == {"page": 1, "pageSize": 2, "pageCount": 3, "itemCount": 6}
    assert [n["CreditNoteNumber"] for n in first["CreditNotes"]] == ["CN-000001", "CN-000002"]
    assert first["CreditNotes"][0]["LineItems"]
    assert "LineItems" not in body(xero.get("/CreditNotes"))["CreditNotes"][0]
    last = body(xero.get("/CreditNotes", params={"page": 3, "pageSize": 2}))["CreditNotes"]
    assert [n["CreditNoteNumber"] for n in last] == ["CN-000005", "CN-000006"]

    # Only what changed since: the new one, then an old one an allocation moved
    def since_then():
        listed = body(xero.get("/CreditNotes", headers={"If-Modified-Since": since}))["CreditNotes"]
        return [n["CreditNoteNumber"] for n in listed]

    assert since_then() == ["CN-000006"]
    xero.allocate(body(xero.get("/CreditNotes/CN-000003"))["CreditNotes"][0]["CreditNoteID"], sale["InvoiceID"], 1)
    assert since_then() == ["CN-000003", "CN-000006"]

    # where and order, as on invoices
    ordered = body(xero.get("/CreditNotes", params={"where": 'Status=="AUTHORISED"', "order": "CreditNoteNumber DESC"}))
    assert [n["CreditNoteNumber"] for n in ordered["CreditNotes"]][:2] == ["CN-000006", "CN-000005"]
    big = body(xero.get("/CreditNotes", params={"where": "Total>100"}))["CreditNotes"]
    assert [n["CreditNoteID"] for n in big] == [changed["CreditNoteID"]]


def test_an_idempotency_key_replays_a_credit_note_batch_and_an_allocation(emulator, xero, sale):
    key = {"Idempotency-Key": "refund-42-credit-notes"}
    first = xero.put("/CreditNotes", {"CreditNotes": [credit_note(CreditNoteNumber="CN-000042")]}, headers=key)
    retry = xero.put("/CreditNotes", {"CreditNotes": [credit_note(CreditNoteNumber="CN-000042")]}, headers=key)
    assert (retry.status_code, retry.content) == (first.status_code, first.content)
    assert len(emulator.credit_notes()) == 1

    note_id = body(first)["CreditNotes"][0]["CreditNoteID"]
    allocation_key = {"headers": {"Idempotency-Key": "refund-42-allocation"}}
    once = xero.allocate(note_id, sale["InvoiceID"], 5, **allocation_key)
    again = xero.allocate(note_id, sale["InvoiceID"], 5, **allocation_key)
    assert (again.status_code, again.content) == (once.status_code, once.content)
    assert xero.invoice_now(sale["InvoiceID"])["AmountCredited"] == D("5.00")
    assert emulator.calls_to("PUT", "/Allocations")[-1]["replayed"] is True


def test_a_credit_note_is_validated_like_an_invoice(xero):
    # Type, lines and accounts follow the invoice's rules
    wrong_type = xero.put("/CreditNotes", {"CreditNotes": [credit_note(Type="ACCREC")]})
    assert first_error(wrong_type) == "Credit Note Type must be ACCRECCREDIT or ACCPAYCREDIT."
    no_lines = xero.put("/CreditNotes", {"CreditNotes": [credit_note(lines=[])]})
    assert first_error(no_lines) == "One or more line items must be specified"
    archived = xero.put("/CreditNotes", {"CreditNotes": [credit_note(lines=[line(account_code="880")])]})
    assert first_error(archived) == (
        "Account code '880' has been archived or deleted. Each line item must reference a valid account."
    )
    # A body Xero cannot read saves nothing
    unreadable = xero.put("/CreditNotes", {"CreditNotes": [credit_note(lines=[line(quantity="lots")])]})
    assert unreadable.status_code == 400 and body(unreadable)["Type"] == "PostDataInvalidException"
    # Both sales and purchase credit notes are kept; only sales ones are numbered
    supplier = xero.create_credit_note(Type="ACCPAYCREDIT", lines=[line(account_code="400", tax_type="INPUT2")])
    assert (supplier["Type"], supplier["CreditNoteNumber"]) == ("ACCPAYCREDIT", "")


def test_an_invoice_and_a_credit_note_for_the_same_lines_agree_to_the_cent(xero):
    lines = [line(quantity=3, unit_amount=33.33), line(quantity=1, unit_amount=19.99, DiscountRate=10)]
    sale = xero.put("/Invoices", {"Invoices": [invoice(LineAmountTypes="Inclusive", lines=lines)]}, params={"unitdp": 4})
    note = xero.put("/CreditNotes", {"CreditNotes": [credit_note(LineAmountTypes="Inclusive", lines=lines)]},
                    params={"unitdp": 4})  # fmt: skip

    sold, credited = body(sale)["Invoices"][0], body(note)["CreditNotes"][0]
    for key in ("SubTotal", "TotalTax", "Total"):
        assert sold[key] == credited[key]
    assert [x["LineAmount"] for x in sold["LineItems"]] == [x["LineAmount"] for x in credited["LineItems"]]


def test_credit_notes_are_found_by_ids_in_a_where_clause_without_their_lines_unless_paged(xero):
    first, _, third = (xero.create_credit_note(CreditNoteNumber=f"CN-{n}") for n in range(1, 4))
    where = " OR ".join(f'CreditNoteID==Guid("{note["CreditNoteID"].upper()}")' for note in (first, third))

    unpaged = body(xero.get("/CreditNotes", params={"where": where}))["CreditNotes"]
    paged = body(xero.get("/CreditNotes", params={"where": where, "page": 1}))["CreditNotes"]

    assert [n["CreditNoteNumber"] for n in unpaged] == ["CN-1", "CN-3"]
    assert all("LineItems" not in n for n in unpaged)
    assert [len(n["LineItems"]) for n in paged] == [1, 1]


def test_a_credit_note_is_not_allocated_by_the_call_that_creates_it(xero, sale):
    # Xero takes allocations only through /CreditNotes/{id}/Allocations; in a create they are ignored
    note = xero.create_credit_note(Allocations=[{"Invoice": {"InvoiceID": sale["InvoiceID"]}, "Amount": 5,
                                                 "Date": "2026-01-10"}])  # fmt: skip

    assert (note["RemainingCredit"], note["Allocations"]) == (D("11.50"), [])
    assert xero.invoice_now(sale["InvoiceID"])["AmountDue"] == D("115.00")


def test_a_payment_may_not_exceed_what_is_due_once_credit_is_allocated(xero, sale, credit):
    assert xero.allocate(credit["CreditNoteID"], sale["InvoiceID"], "57.50").status_code == 200

    over = xero.pay(sale["InvoiceID"], "57.51")
    assert first_error(over) == "Payment amount exceeds the amount outstanding on this document"
    assert xero.pay(sale["InvoiceID"], "57.50").status_code == 200
    settled = xero.invoice_now(sale["InvoiceID"])
    assert (settled["Status"], settled["AmountPaid"], settled["AmountCredited"]) == ("PAID", D("57.50"), D("57.50"))


def test_credit_note_status_changes_follow_the_invoices(xero):
    def set_status(note, status):
        return xero.post(f"/CreditNotes/{note['CreditNoteID']}", {"CreditNotes": [{"Status": status}]})

    incomplete = xero.create_credit_note(Status="DRAFT", lines=[line(account_code=None)])
    assert first_error(set_status(incomplete, "AUTHORISED")) == "Account code or ID must be specified."
    draft = xero.create_credit_note(Status="DRAFT")
    assert set_status(draft, "SUBMITTED").status_code == 200
    assert body(set_status(draft, "DELETED"))["CreditNotes"][0]["Status"] == "DELETED"
    assert first_error(set_status(draft, "DRAFT")) == "Credit Note not of valid status for modification"

    approved = xero.create_credit_note()
    assert first_error(set_status(approved, "DELETED")) == "Credit Note not of valid status for modification"
    assert first_error(xero.put("/CreditNotes", {"CreditNotes": [credit_note(Status="PAID")]})) == (
        "Credit Note not of valid status for creation"
    )
