"""Refunds, cancellations and credit notes through the sync, checked against what the emulated Xero holds:
each website act ends in exactly the Xero state a careful bookkeeper would have entered (README, "How the
sync works"), and Xero-side changes (a bookkeeper's credit note, a deleted payment) come back."""

from decimal import Decimal as D

import pytest
from django.urls import reverse

from ecommerce import selectors, services
from ecommerce.models import PaymentMethod, Refund, Sale
from ecommerce.selectors import PaymentState
from tests.ecommerce.factories import a_contact, a_payment_method
from tests.xero_sync.test_push import api_calls, beanie_order, card, item, link_of, xero_invoice
from tests.xero_sync.test_staff_admin import xero_states
from xero_sync.models import OutboxEntry, RecordKind, XeroLink
from xero_sync.services import configuration
from xero_sync.services.books_check import books_check
from xero_sync.services.configuration import DEMO_REFERENCE_PREFIX
from xero_sync.services.links import REFUND_PARTS, links_send_now
from xero_sync.services.sync import sync_run

pytestmark = pytest.mark.django_db
State = XeroLink.State


def sync(*, pull: bool = True):
    run = sync_run(trigger="manual", force=True, pull=pull)
    assert run is not None, "the sync did not run"
    return run


def fresh(sale: Sale) -> Sale:
    return Sale.objects.prefetch_related(*selectors.SALE_PREFETCH).get(pk=sale.pk)


def three_caps(**fields) -> Sale:
    """3 x 33.33, GST 15% inclusive: 99.99, of which 13.04 tax."""
    return services.sale_create(contact=fields.pop("contact", None) or a_contact(), confirm=True,
                                lines=[item("Cap", "3", "33.33")], **fields)


def paid_by_card(sale: Sale, amount: str | None = None) -> Sale:
    total = selectors.sale_totals(fresh(sale)).total
    services.receipt_record(sale=sale, payment_method=card(), amount=D(amount) if amount else total)
    return sale


def xero_credit_note(xero, number: str) -> dict:
    found = [note for note in xero.credit_notes() if note.get("CreditNoteNumber") == number]
    assert len(found) == 1, f"{len(found)} Xero credit notes numbered {number}"
    return found[0]


def refund_payments(xero, credit_note: dict) -> list[dict]:
    return [payment for payment in xero.payments() if (payment.get("CreditNote") or {}).get("CreditNoteID")
            == credit_note["CreditNoteID"] and payment.get("Status") != "DELETED"]


def test_cancelling_an_unpaid_sale_voids_its_invoice_in_xero(xero_connected, xero_site):
    sale = beanie_order()
    sync(pull=False)
    assert xero_invoice(xero_site, sale.number)["Status"] == "AUTHORISED"

    services.sale_cancel(sale=sale)
    sync(pull=False)

    assert xero_invoice(xero_site, sale.number)["Status"] == "VOIDED"
    assert link_of(RecordKind.SALE, sale).state == State.SYNCED
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.CANCELLED


def test_a_whole_refund_is_a_credit_note_for_the_same_lines_and_a_refund_payment(xero_connected, xero_site):
    sale = paid_by_card(three_caps())
    sync(pull=False)
    refund = services.refund_record(sale=sale, payment_method=card(), reason="Wrong size")
    sync(pull=False)

    note = xero_credit_note(xero_site, refund.number)
    assert note["Type"] == "ACCRECCREDIT"
    assert (D(str(note["Total"])), D(str(note["TotalTax"]))) == (D("99.99"), D("13.04"))
    assert D(str(refund.credit_total)) == D("99.99") and refund.credit_tax == D("13.04")
    [line] = note["LineItems"]
    assert (D(str(line["Quantity"])), line["AccountCode"], line["TaxType"]) == (D("3"), "200", "OUTPUT2")
    [money_back] = refund_payments(xero_site, note)
    assert D(str(money_back["Amount"])) == D("99.99") and money_back["Account"]["Code"] == "620"
    assert note["Status"] == "PAID" and D(str(note["RemainingCredit"])) == 0
    assert xero_invoice(xero_site, sale.number)["Status"] == "PAID"  # the invoice stays paid
    assert {link_of(kind, refund).state for kind in (RecordKind.REFUND, RecordKind.REFUND_PAYMENT)} == {State.SYNCED}
    assert not XeroLink.objects.filter(kind=RecordKind.ALLOCATION).exists()


def test_cancel_and_refund_of_a_part_paid_sale_allocates_the_unpaid_part_and_refunds_the_rest(
        xero_connected, xero_site):
    sale = paid_by_card(three_caps(), "40.00")
    sync(pull=False)
    services.sale_cancel(sale=sale, refund_to=card())
    sync(pull=False)

    refund = Refund.objects.get(sale=sale)
    note = xero_credit_note(xero_site, refund.number)
    invoice = xero_invoice(xero_site, sale.number)
    assert D(str(note["Total"])) == D("99.99")
    assert D(str(invoice["AmountCredited"])) == D("59.99") and D(str(invoice["AmountDue"])) == 0
    assert invoice["Status"] == "PAID"  # paid 40.00, credited 59.99: nothing due, not voided
    [money_back] = refund_payments(xero_site, note)
    assert D(str(money_back["Amount"])) == D("40.00")
    assert note["Status"] == "PAID"
    assert {link_of(kind, refund).state for kind in RecordKind if kind in (
        RecordKind.REFUND, RecordKind.ALLOCATION, RecordKind.REFUND_PAYMENT)} == {State.SYNCED}


def test_refunds_go_fifty_credit_notes_and_fifty_refunds_a_call(xero_connected, xero_site):
    sales = [paid_by_card(three_caps()) for _ in range(3)]
    sync(pull=False)
    xero_site.reset_calls()
    for sale in sales:
        [cap] = sale.lines.all()
        services.refund_record(sale=sale, payment_method=card(), lines=[{"line": cap, "quantity": D("1")}])
    sync(pull=False)

    writes = [call for call in api_calls(xero_site) if call[0] in ("PUT", "POST")]
    assert writes == [("PUT", "/CreditNotes"), ("PUT", "/Payments")], writes
    for refund in Refund.objects.all():
        assert D(str(xero_credit_note(xero_site, refund.number)["Total"])) == D("33.33")


@pytest.mark.parametrize("fault", ["500", "hang"])
def test_a_refund_batch_stored_but_not_answered_leaves_one_credit_note_and_one_refund(
        xero_connected, xero_site, settings, fault):
    sale = paid_by_card(three_caps())
    sync(pull=False)
    refund = services.refund_record(sale=sale, payment_method=card())
    settings.XERO_HTTP_TIMEOUT = 1
    xero_site.inject_fault(fault, method="PUT", path_contains="/CreditNotes", after_write=True, seconds=2)
    sync(pull=False)
    assert link_of(RecordKind.REFUND, refund).state != State.SYNCED
    xero_site.inject_fault(fault, method="PUT", path_contains="/Payments", after_write=True, seconds=2)
    for _ in range(4):
        XeroLink.objects.update(attempts=0)
        services_outbox_now()
        sync(pull=False)

    note = xero_credit_note(xero_site, refund.number)
    assert len(refund_payments(xero_site, note)) == 1
    assert {link_of(kind, refund).state for kind in (RecordKind.REFUND, RecordKind.REFUND_PAYMENT)} == {State.SYNCED}


def services_outbox_now():
    """Skip the backoff the failed batch was given: the next run tries at once."""
    from xero_sync.models import OutboxEntry
    OutboxEntry.objects.update(not_before=None)


def test_a_bookkeepers_credit_note_allocated_in_xero_shows_on_the_sale(xero_connected, xero_site):
    sale = three_caps()
    sync()
    contact_id = xero_invoice(xero_site, sale.number)["Contact"]["ContactID"]
    note = xero_site.create_credit_note(Contact={"ContactID": contact_id}, LineAmountTypes="Inclusive", LineItems=[
        {"Description": "Goodwill", "Quantity": 1, "UnitAmount": "99.99", "AccountCode": "200", "TaxType": "OUTPUT2"}])
    xero_site.allocate_credit_note(note["CreditNoteID"], xero_invoice(xero_site, sale.number)["InvoiceID"], "99.99")
    sync()

    sale = fresh(sale)
    assert selectors.sale_payment_state(sale) == PaymentState.CREDITED
    assert selectors.sale_amount_due(sale) == 0
    assert sale.credit_allocations.get().credit_note.number == note["CreditNoteNumber"]


def test_a_pushed_payment_deleted_in_xero_flips_the_receipt_and_can_be_sent_again(xero_connected, xero_site):
    sale = paid_by_card(beanie_order())
    sync()
    receipt = sale.receipts.get()
    payment_id = str(link_of(RecordKind.RECEIPT, receipt).xero_id)
    xero_site.delete_payment(payment_id)
    sync()

    link = link_of(RecordKind.RECEIPT, receipt)
    assert link.state == State.DELETED and "deleted this payment in Xero" in link.last_error
    receipt.refresh_from_db()
    assert receipt.removed_in_books_at is not None
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.UNPAID  # as Xero says

    links_send_now(kind=RecordKind.RECEIPT, local_ids=[receipt.pk])
    sync()
    link.refresh_from_db()
    assert link.state == State.SYNCED and str(link.xero_id) != payment_id
    assert xero_invoice(xero_site, sale.number)["Status"] == "PAID"
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.PAID


def test_a_sale_number_already_in_xero_is_never_overwritten(xero_connected, xero_site):
    # given the bookkeeper typed invoice S-000001 into Xero before the website made any sale
    someone = xero_site.create_contact(Name="Walk-in customer")
    theirs = xero_site.create_invoice(InvoiceNumber="S-000001", Contact={"ContactID": someone["ContactID"]},
                                      LineItems=[{"Description": "Counter sale", "Quantity": 1, "UnitAmount": "141.45",
                                                  "AccountCode": "200", "TaxType": "OUTPUT2"}])
    sync()  # the pull sees it

    # when the website makes a sale, its number skips the one Xero holds, and the push leaves theirs alone
    sale = beanie_order()
    sync()
    assert sale.number == "S-000002"
    kept = xero_invoice(xero_site, "S-000001")
    assert D(str(kept["Total"])) == D(str(theirs["Total"])) and kept["Contact"]["ContactID"] == someone["ContactID"]
    assert xero_invoice(xero_site, "S-000002")["Contact"]["ContactID"] != someone["ContactID"]


def test_a_number_collision_that_still_happens_is_a_conflict_not_an_overwrite(xero_connected, xero_site):
    # given the website's sale S-000001 exists before the bookkeeper types an S-000001 of their own
    sale = beanie_order()
    someone = xero_site.create_contact(Name="Walk-in customer")
    theirs = xero_site.create_invoice(InvoiceNumber=sale.number, Contact={"ContactID": someone["ContactID"]}, LineItems=[
        {"Description": "Counter sale", "Quantity": 1, "UnitAmount": "141.45", "AccountCode": "200",
         "TaxType": "OUTPUT2"}])

    for _ in range(2):  # refused as a number Xero holds, then found and judged not ours
        services_outbox_now()
        sync(pull=False)

    kept = xero_invoice(xero_site, sale.number)
    assert D(str(kept["Total"])) == D(str(theirs["Total"])) and kept["Contact"]["ContactID"] == someone["ContactID"]
    link = link_of(RecordKind.SALE, sale)
    assert link.state == State.CONFLICT and link.xero_id is None
    assert "that the website did not create" in link.last_error
    # and the pull does not take the bookkeeper's invoice (or a deposit on it) for the sale's
    from xero_sync.services import configuration
    deposits = a_payment_method("direct-deposit", "Direct deposit")
    configuration.payment_method_configure(payment_method=deposits, direction="pull", account_code="090")
    xero_site.record_bank_payment(kept["InvoiceID"], amount="20.00", account_code="090")
    sync()
    from ecommerce.models import Invoice
    assert Invoice.objects.get(xero_id=kept["InvoiceID"]).sale is None
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.UNPAID


def test_a_pushed_refund_deleted_in_xero_stops_counting_and_can_be_sent_again(xero_connected, xero_site):
    sale = paid_by_card(three_caps())
    sync()
    refund = services.refund_record(sale=sale, payment_method=card())
    sync()
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.REFUNDED
    refund_payment_id = str(link_of(RecordKind.REFUND_PAYMENT, refund).xero_id)

    xero_site.delete_payment(refund_payment_id)
    sync()

    assert link_of(RecordKind.REFUND_PAYMENT, refund).state == State.DELETED
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.PAID  # Xero holds the money as not given back
    note = xero_credit_note(xero_site, refund.number)
    assert D(str(note["RemainingCredit"])) == D("99.99")

    links_send_now(kind=RecordKind.REFUND, local_ids=[refund.pk])
    sync()
    assert link_of(RecordKind.REFUND_PAYMENT, refund).state == State.SYNCED
    assert len(refund_payments(xero_site, xero_credit_note(xero_site, refund.number))) == 1
    assert selectors.sale_payment_state(fresh(sale)) == PaymentState.REFUNDED


def test_a_credit_note_voided_in_xero_shows_voided_on_the_website_copy(xero_connected, xero_site):
    sale = three_caps()
    sync()
    contact_id = xero_invoice(xero_site, sale.number)["Contact"]["ContactID"]
    note = xero_site.create_credit_note(Contact={"ContactID": contact_id}, LineItems=[
        {"Description": "Goodwill", "Quantity": 1, "UnitAmount": "10.00", "AccountCode": "200", "TaxType": "OUTPUT2"}])
    sync()
    xero_site.void_credit_note(note["CreditNoteID"])
    sync()
    from ecommerce.models import CreditNote
    copy = CreditNote.objects.get(xero_id=note["CreditNoteID"])
    assert copy.status == CreditNote.Status.VOIDED and copy.refund is None


def test_a_refunds_page_shows_its_credit_note_and_its_refund_payment_deleted_in_xero(
        xero_connected, xero_site, admin_client):
    sale = paid_by_card(three_caps())
    sync()
    refund = services.refund_record(sale=sale, payment_method=card())
    sync()
    xero_site.delete_payment(str(link_of(RecordKind.REFUND_PAYMENT, refund).xero_id))
    sync()

    page = admin_client.get(f"/admin/ecommerce/refund/{refund.pk}/change/").content.decode()
    assert "Refund payment" in page and "Deleted in Xero" in page
    assert "The bookkeeper deleted this payment in Xero" in page  # its words and what to do
    assert "deleted in Xero" in page  # and in the history


def test_cancelling_a_sale_the_bookkeeper_credited_in_xero_leaves_the_invoice_settled(xero_connected, xero_site):
    sale = three_caps()
    sync()
    invoice = xero_invoice(xero_site, sale.number)
    note = xero_site.create_credit_note(Contact={"ContactID": invoice["Contact"]["ContactID"]},
                                        LineAmountTypes="Inclusive", LineItems=[
        {"Description": "Goodwill", "Quantity": 1, "UnitAmount": "99.99", "AccountCode": "200", "TaxType": "OUTPUT2"}])
    xero_site.allocate_credit_note(note["CreditNoteID"], invoice["InvoiceID"], "99.99")
    sync()

    services.sale_cancel(sale=sale)
    sync()

    assert xero_invoice(xero_site, sale.number)["Status"] == "PAID"  # settled by their credit, not voided
    assert link_of(RecordKind.SALE, sale).state == State.SYNCED
    assert not Refund.objects.filter(sale=sale).exists()  # nothing was left to credit


def test_a_demo_sales_refund_stays_on_the_website_as_its_column_says_while_demo_data_is_withheld(
        xero_connected, xero_site, admin_client, settings):
    # given a real organisation (demo data withheld), a demo sale and a real one, both paid and refunded
    settings.XERO_USING_EMULATOR = False  # as with a real app's XERO_CLIENT_ID (the calls still go to the emulator)
    demo = paid_by_card(three_caps(reference=f"{DEMO_REFERENCE_PREFIX}0001"))
    real = paid_by_card(three_caps())
    demo_refund = services.refund_record(sale=demo, payment_method=card(), reason="Wrong size")
    real_refund = services.refund_record(sale=real, payment_method=card(), reason="Wrong size")

    # then the Xero column calls the demo refund not for Xero, and the push indeed leaves it out (no
    # credit note, no error waiting for its sale, nothing left queued), while the real one goes
    assert refund_states(admin_client)[demo_refund.pk] == "Not for Xero yet"
    sync(pull=False)
    assert [note["CreditNoteNumber"] for note in xero_site.credit_notes()] == [real_refund.number]
    assert not XeroLink.objects.filter(kind__in=REFUND_PARTS, local_id=demo_refund.pk).exists()
    assert not OutboxEntry.objects.filter(kind=RecordKind.REFUND, local_id=demo_refund.pk).exists()
    states = refund_states(admin_client)
    assert (states[demo_refund.pk], states[real_refund.pk]) == ("Not for Xero yet", "Synced")


def refund_states(client) -> dict[int, str]:
    return xero_states(client.get(reverse("admin:ecommerce_refund_changelist")))


# --- A sale cancelled and refunded before any of it reached Xero -------------------------------------------

def cash() -> PaymentMethod:
    method = a_payment_method("cash", "Cash")
    configuration.payment_method_configure(payment_method=method, direction="none")  # kept on the website
    return method


def month_check(connection, sale: Sale):
    [month] = books_check(tenant_id=connection.tenant_id, month=sale.date)
    return month


@pytest.mark.parametrize("received", ["99.99", "40.00"])
def test_a_sale_taken_in_cash_and_cancelled_with_a_refund_before_it_reached_xero_sends_nothing(
        xero_connected, xero_site, admin_client, received):
    # given a sale paid (in full, or in part) in cash, a method kept off Xero, then cancelled with its cash
    # given back before any sync: the money went in and out on the website only
    sale = three_caps()
    services.receipt_record(sale=sale, payment_method=cash(), amount=D(received))
    services.sale_cancel(sale=sale, refund_to=cash())
    refund = Refund.objects.get(sale=sale)
    assert refund_states(admin_client)[refund.pk] == "Not for Xero yet"

    # when the sync runs
    run = sync()

    # then nothing of the sale went (no invoice, payment, credit note or refund), and nothing failed waiting
    assert run.failed == {}
    assert xero_site.invoices() == [] and xero_site.credit_notes() == [] and xero_site.payments() == []
    assert not XeroLink.objects.filter(local_id__in=[sale.pk, refund.pk], kind__in=[
        RecordKind.SALE, *REFUND_PARTS]).exists()
    assert not OutboxEntry.objects.exists()
    assert refund_states(admin_client)[refund.pk] == "Not for Xero yet"
    # and the books check has nothing for it to disagree on
    month = month_check(xero_connected, sale)
    assert month.differences == [] and month.refunded == D(received)


@pytest.mark.parametrize("received", ["99.99", "40.00"])
def test_a_sale_paid_by_card_and_cancelled_with_a_refund_before_it_reached_xero_goes_whole(
        xero_connected, xero_site, received):
    # given a sale paid by card (pushed: Xero's 620 is reconciled against the card statement, which shows
    # the money coming in and going back), then cancelled with the money refunded to the card, before any sync
    sale = paid_by_card(three_caps(), received)
    services.sale_cancel(sale=sale, refund_to=card())
    refund = Refund.objects.get(sale=sale)

    # when the sync runs
    run = sync()

    # then Xero holds what a bookkeeper would enter by hand: the invoice, its payment, the credit note
    # (its unpaid part allocated) and the refund from 620; nothing failed and the books agree
    assert run.failed == {}
    invoice = xero_invoice(xero_site, sale.number)
    assert (invoice["Status"], D(str(invoice["AmountPaid"])), D(str(invoice["AmountDue"]))) == (
        "PAID", D(received), 0)
    note = xero_credit_note(xero_site, refund.number)
    assert (note["Status"], D(str(note["Total"])), D(str(note["RemainingCredit"]))) == ("PAID", D("99.99"), 0)
    [money_back] = refund_payments(xero_site, note)
    assert (D(str(money_back["Amount"])), money_back["Account"]["Code"]) == (D(received), "620")
    assert {link.state for link in XeroLink.objects.all()} == {State.SYNCED}
    assert month_check(xero_connected, sale).differences == []
