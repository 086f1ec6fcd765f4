"""Pushing the shop's contacts, sales and receipts to Xero, checked against what the emulated Xero holds.

Every test reads Xero's side from the emulator (its stored contacts, invoices and payments, and the log
of calls it received) rather than trusting our own tables. Runs are push-only (`pull=False`): the call
counts here are the push's, whatever the pull later adds to a run.
"""

import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from ecommerce import selectors, services
from ecommerce.models import Contact, PaymentMethod, Sale
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.models import OutboxEntry, RecordKind, XeroLink
from xero_sync.services import configuration
from xero_sync.services.links import links_requeue
from xero_sync.services.outbox import outbox_record_many
from xero_sync.services.sync import SyncAttempt, SyncOutcome, sync_attempt, sync_is_due, sync_run

pytestmark = pytest.mark.django_db


# --- Building the shop's side ------------------------------------------------------------------------


def item(description: str = "Merino beanie", quantity: str = "1", unit_amount: str = "10.00", **fields) -> dict:
    return {"description": description, "quantity": Decimal(quantity), "unit_amount": Decimal(unit_amount),
            "tax_code": "GST", "tax_rate": Decimal("15"), **fields}


def shipping(unit_amount: str = "9.50", **fields) -> dict:
    return item("Courier", "1", unit_amount, kind="shipping", **fields)


def beanie_order(contact: Contact | None = None, **fields) -> Sale:
    """Two beanies at 39.95 and 9.50 shipping, GST inclusive: 79.90 + 9.50 = 89.40."""
    return a_sale(contact=contact, lines=[item(quantity="2", unit_amount="39.95"), shipping()], **fields)


def card() -> PaymentMethod:
    return a_payment_method("card")  # configured by xero_connected: pushed to account 620


def a_person(first_name: str, last_name: str, email: str) -> Contact:
    return a_contact(first_name=first_name, last_name=last_name, email=email)


# --- Reading Xero's side -----------------------------------------------------------------------------


def push_now():
    run = sync_run(trigger="manual", force=True, pull=False)
    assert run is not None, "the sync did not run"
    return run


def api_calls(xero) -> list[tuple[str, str]]:
    """The Accounting API calls Xero received, as (method, endpoint)."""
    return [(call["method"], call["path"].split("/api.xro/2.0", 1)[1]) for call in xero.calls
            if "/api.xro/2.0/" in call["path"]]


def elements_sent(xero, method: str, endpoint: str, key: str) -> list[int]:
    """How many records each write to an endpoint carried."""
    return [len(call["request_json"][key]) for call in xero.calls_to(method, f"/api.xro/2.0/{endpoint}")]


def xero_invoice(xero, number: str) -> dict:
    found = [invoice for invoice in xero.invoices() if invoice["InvoiceNumber"] == number]
    assert len(found) == 1, f"{len(found)} Xero invoices numbered {number}"
    return found[0]


def link_of(kind: str, record) -> XeroLink:
    return XeroLink.objects.get(kind=kind, local_id=record.pk)


def outbox_rows() -> list[tuple[str, int]]:
    return sorted(OutboxEntry.objects.values_list("kind", "local_id"))


# --- One order end to end ----------------------------------------------------------------------------


def test_one_order_with_a_new_contact_and_a_card_receipt_takes_four_calls_then_none(xero_connected, xero_site):
    # given a new customer, a confirmed order and its card payment taken at checkout
    contact = a_person("Aroha", "Walker", "aroha@example.com")
    sale = beanie_order(contact)
    receipt = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("89.40"),
                                      reference="ch_3Nx")

    # when one sync runs
    run = push_now()

    # then it read the contact index once and wrote the contact (created with PUT, which never merges
    # into a namesake), the invoice (created with PUT too, which never overwrites an invoice Xero holds under
    # that number) and the payment: four calls
    assert api_calls(xero_site) == [("GET", "/Contacts"), ("PUT", "/Contacts"), ("PUT", "/Invoices"),
                                    ("PUT", "/Payments")]
    assert run.calls == 4
    # and Xero holds one contact carrying the website's key
    [xero_contact] = xero_site.contacts()
    assert xero_contact["ContactNumber"] == f"WEB-C{contact.pk:06d}"
    assert (xero_contact["Name"], xero_contact["EmailAddress"]) == ("Aroha Walker", "aroha@example.com")
    # and one approved sales invoice numbered like the sale, for the website's total to the cent
    [invoice] = xero_site.invoices()
    assert (invoice["Type"], invoice["InvoiceNumber"]) == ("ACCREC", sale.number)
    assert invoice["Contact"]["ContactID"] == xero_contact["ContactID"]
    assert invoice["Total"] == Decimal("89.40") == selectors.sale_totals(sale).total
    assert [(line["Description"], line["AccountCode"], line["TaxType"]) for line in invoice["LineItems"]] == [
        ("Merino beanie", "200", "OUTPUT2"), ("Courier", "205", "OUTPUT2")]
    # and one payment into the card clearing account, which paid the invoice
    [payment] = xero_site.payments()
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert (payment["Account"]["Code"], payment["Amount"]) == ("620", Decimal("89.40"))
    assert payment["Reference"].startswith(f"WEB-R{receipt.pk:06d}")
    assert xero_invoice(xero_site, sale.number)["Status"] == "PAID"
    assert xero_invoice(xero_site, sale.number)["AmountDue"] == Decimal("0.00")
    # and the admin shows all three synced, with nothing left to send
    links = XeroLink.objects.order_by("kind")
    assert [(link.kind, link.state, str(link.xero_id)) for link in links] == [
        ("contact", "synced", xero_contact["ContactID"]), ("receipt", "synced", payment["PaymentID"]),
        ("sale", "synced", invoice["InvoiceID"])]
    assert outbox_rows() == []

    # when a second sync runs with nothing changed
    xero_site.reset_calls()
    again = push_now()

    # then it costs no call at all
    assert api_calls(xero_site) == []
    assert again.calls == 0


def test_xero_totals_equal_the_website_totals_to_the_cent(xero_connected, xero_site):
    # given sales whose totals were worked by hand, rounding each line as Xero does
    contact = a_contact()
    inclusive = beanie_order(contact)
    # 3 x 19.995 less 10% = 53.9865 -> 53.99, tax 8.0985 -> 8.10; 1.5 x 12.3333 = 18.49995 -> 18.50,
    # tax 2.775 -> 2.78; 7 x 0.3333 = 2.3331 -> 2.33 zero-rated; shipping 5.00, tax 0.75.
    # Taxing the 77.49 taxed subtotal once would give 11.62: one cent short of the per-line 11.63.
    exclusive = a_sale(contact=contact, line_amount_type="exclusive", lines=[
        item(quantity="3", unit_amount="19.995", discount_rate=Decimal("10")),
        item("Possum socks", quantity="1.5", unit_amount="12.3333"),
        item("Postcard", quantity="7", unit_amount="0.3333", tax_code="ZERO", tax_rate=Decimal("0")),
        shipping("5.00"),
    ])
    # 3 x 33.3333 = 99.9999 less 12.5% = 87.4999125 -> 87.50, tax 87.50 x 15/115 = 11.413 -> 11.41;
    # 0.9999 -> 1.00, tax 0.1304 -> 0.13.
    inclusive_discounted = a_sale(contact=contact, lines=[
        item(quantity="3", unit_amount="33.3333", discount_rate=Decimal("12.5")),
        item("Sticker", unit_amount="0.9999"),
    ])
    # 2.5 x 10.005 = 25.0125 -> 25.01, no tax.
    no_tax = a_sale(contact=contact, line_amount_type="no_tax", lines=[
        item("Gift card", quantity="2.5", unit_amount="10.005", tax_code="", tax_rate=Decimal("0"))])
    expected = {  # SubTotal, TotalTax, Total
        inclusive.number: (Decimal("77.74"), Decimal("11.66"), Decimal("89.40")),
        exclusive.number: (Decimal("79.82"), Decimal("11.63"), Decimal("91.45")),
        inclusive_discounted.number: (Decimal("76.96"), Decimal("11.54"), Decimal("88.50")),
        no_tax.number: (Decimal("25.01"), Decimal("0.00"), Decimal("25.01")),
    }

    # when they are pushed
    push_now()

    # then Xero's figures are the hand-worked ones, which are also the website's
    held = {invoice["InvoiceNumber"]: (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"])
            for invoice in xero_site.invoices()}
    assert held == expected
    for sale in (inclusive, exclusive, inclusive_discounted, no_tax):
        website = selectors.sale_totals(sale)
        assert held[sale.number] == (website.subtotal, website.total_tax, website.total), sale.number
        assert link_of(RecordKind.SALE, sale).state == XeroLink.State.SYNCED
    assert xero_invoice(xero_site, exclusive.number)["LineAmountTypes"] == "Exclusive"
    assert xero_invoice(xero_site, no_tax.number)["LineAmountTypes"] == "NoTax"
    # and the 4-dp prices are stored in Xero unrounded (Xero shows them at 2 dp unless asked for 4)
    stored = xero_site.organisation().accrec_by_number(exclusive.number)
    assert [line["UnitAmount"] for line in stored["LineItems"]] == [
        Decimal("19.995"), Decimal("12.3333"), Decimal("0.3333"), Decimal("5")]


# --- Batching -----------------------------------------------------------------------------------------


def test_a_hundred_edits_inside_the_quiet_period_make_one_invoice_write(xero_connected, xero_site):
    # given an order already in Xero
    sale = a_sale(lines=[item()])
    push_now()
    xero_site.reset_calls()

    # when staff save it 100 times, each a separate change
    for edit in range(1, 101):
        services.sale_update(sale=sale, reference=f"Note {edit}", lines=[item(quantity=str(edit))])

    # then every change is recorded, the quiet period is still running, and it is due once it ends
    assert OutboxEntry.objects.filter(kind=RecordKind.SALE, local_id=sale.pk).count() >= 100
    assert not sync_is_due(timezone.now())
    assert sync_is_due(timezone.now() + datetime.timedelta(seconds=121))
    # when the batch runs
    push_now()

    # then Xero got one invoice write carrying one invoice: the last version
    assert api_calls(xero_site) == [("POST", "/Invoices")]
    assert elements_sent(xero_site, "POST", "Invoices", "Invoices") == [1]
    invoice = xero_invoice(xero_site, sale.number)
    assert invoice["Reference"] == "Note 100"
    assert invoice["LineItems"][0]["Quantity"] == Decimal("100")
    assert invoice["Total"] == Decimal("1000.00")
    assert outbox_rows() == []


def test_120_new_sales_for_customers_already_in_xero_take_three_invoice_calls(xero_connected, xero_site):
    # given three customers already in Xero
    customers = [a_person("Customer", str(n), f"customer{n}@example.com") for n in range(3)]
    for customer in customers:
        a_sale(contact=customer, lines=[item()])
    push_now()
    xero_site.reset_calls()

    # when 120 new orders come in for them
    sales = [a_sale(contact=customers[n % 3], lines=[item(unit_amount=f"{n + 1}.00")]) for n in range(120)]
    push_now()

    # then they were created in three invoice calls of 50, 50 and 20, and nothing else was needed
    assert api_calls(xero_site) == [("PUT", "/Invoices")] * 3
    assert elements_sent(xero_site, "PUT", "Invoices", "Invoices") == [50, 50, 20]
    # and Xero holds each of them once, for the right amount and customer
    held = {invoice["InvoiceNumber"]: invoice for invoice in xero_site.invoices()}
    assert len(held) == len(xero_site.invoices()) == 123
    contact_ids = {customer.pk: str(link_of(RecordKind.CONTACT, customer).xero_id) for customer in customers}
    for n, sale in enumerate(sales):
        assert held[sale.number]["Total"] == Decimal(f"{n + 1}.00")
        assert held[sale.number]["Contact"]["ContactID"] == contact_ids[sale.contact_id]


def test_one_invalid_sale_fails_alone_with_xeros_message_and_the_run_goes_on(xero_connected, xero_site):
    # given a customer already in Xero
    customer = a_contact()
    a_sale(contact=customer, lines=[item()])
    push_now()
    xero_site.reset_calls()
    # and 50 new orders, one of them booked to an account Xero does not have, one paid by card
    sales = [a_sale(contact=customer, lines=[item(unit_amount=f"{n + 1}.00")]) for n in range(50)]
    bad = sales[16]
    services.sale_update(sale=bad, lines=[item(account_code="999")])
    paid = sales[0]
    receipt = services.receipt_record(sale=paid, payment_method=card(), amount=Decimal("1.00"))

    # when they are pushed
    run = push_now()

    # then one creating call carried all 50, and Xero stored the other 49
    assert elements_sent(xero_site, "PUT", "Invoices", "Invoices") == [50]
    held = {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}
    assert bad.number not in held
    assert {sale.number for sale in sales if sale != bad} <= held
    assert len(held) == 1 + 49
    # and the one shows Xero's own message
    link = link_of(RecordKind.SALE, bad)
    assert link.state == XeroLink.State.ERROR
    assert "Account code '999' is not a valid code for this document." in link.last_error
    assert link.xero_id is None
    assert any(bad.number in error and "999" in error for error in run.errors)
    assert run.failed == {"sale": 1}
    # and the run went on to pay the card order
    assert api_calls(xero_site)[-1] == ("PUT", "/Payments")
    [payment] = xero_site.payments()
    assert payment["Reference"].startswith(f"WEB-R{receipt.pk:06d}")
    assert xero_invoice(xero_site, paid.number)["Status"] == "PAID"
    assert XeroLink.objects.filter(kind=RecordKind.SALE, state=XeroLink.State.SYNCED).count() == 1 + 49


# --- Contacts -----------------------------------------------------------------------------------------


def test_two_david_smiths_stay_two_xero_contacts(xero_connected, xero_site):
    # given two different people called David Smith, each with an order
    first = a_person("David", "Smith", "david@first.example")
    second = a_person("David", "Smith", "david@second.example")
    first_sale, second_sale = beanie_order(first), beanie_order(second)

    # when they are pushed together
    push_now()

    # then Xero holds two contacts, the second named so the bookkeeper can tell them apart
    by_email = {contact["EmailAddress"]: contact for contact in xero_site.contacts()}
    assert len(xero_site.contacts()) == 2
    assert by_email["david@first.example"]["Name"] == "David Smith"
    assert by_email["david@second.example"]["Name"] == "David Smith (david@second.example)"
    # and the admin shows the name he has in Xero
    assert link_of(RecordKind.CONTACT, first).xero_name == ""
    assert link_of(RecordKind.CONTACT, second).xero_name == "David Smith (david@second.example)"
    # and each order is on its own customer's account
    assert xero_invoice(xero_site, first_sale.number)["Contact"]["ContactID"] == by_email[
        "david@first.example"]["ContactID"]
    assert xero_invoice(xero_site, second_sale.number)["Contact"]["ContactID"] == by_email[
        "david@second.example"]["ContactID"]

    # when a third David Smith orders later, in a run of his own
    third = a_person("David", "Smith", "david@third.example")
    beanie_order(third)
    push_now()

    # then he too is a contact of his own
    names = sorted(contact["Name"] for contact in xero_site.contacts())
    assert names == ["David Smith", "David Smith (david@second.example)", "David Smith (david@third.example)"]
    assert link_of(RecordKind.CONTACT, third).xero_name == "David Smith (david@third.example)"


def test_a_website_contact_whose_email_is_already_in_xero_is_linked_not_duplicated(xero_connected, xero_site):
    # given a customer the bookkeeper already typed into Xero
    existing = xero_site.create_contact(Name="A Walker", EmailAddress="Aroha.Walker@Example.com")
    # and the same person ordering on the website
    contact = a_person("Aroha", "Walker", "aroha.walker@example.com")
    sale = beanie_order(contact)

    # when it is pushed
    push_now()

    # then Xero still has one contact: the bookkeeper's, now carrying the website's key
    [xero_contact] = xero_site.contacts()
    assert xero_contact["ContactID"] == existing["ContactID"]
    assert xero_contact["ContactNumber"] == f"WEB-C{contact.pk:06d}"
    assert str(link_of(RecordKind.CONTACT, contact).xero_id) == existing["ContactID"]
    # and the write addressed that contact rather than creating one
    [[sent]] = [call["request_json"]["Contacts"] for call in xero_site.calls_to("POST", "/Contacts")]
    assert sent["ContactID"] == existing["ContactID"]
    assert xero_invoice(xero_site, sale.number)["Contact"]["ContactID"] == existing["ContactID"]


def test_contacts_without_a_confirmed_sale_and_draft_sales_stay_off_xero(xero_connected, xero_site):
    # given a newsletter subscriber who never ordered, and a customer with a draft order only
    subscriber = a_person("Mere", "Tane", "mere@example.com")
    services.contact_update(contact=subscriber, city="Rotorua")
    shopper = a_person("Tama", "Rangi", "tama@example.com")
    draft = beanie_order(shopper, confirm=False)

    # when a sync runs
    push_now()

    # then Xero received nothing, and the changes are not kept waiting for ever
    assert api_calls(xero_site) == []
    assert xero_site.contacts() == [] and xero_site.invoices() == []
    assert outbox_rows() == []

    # when the draft is confirmed
    services.sale_confirm(sale=draft)
    push_now()

    # then the customer and the order reach Xero, and the subscriber still does not
    assert [contact["EmailAddress"] for contact in xero_site.contacts()] == ["tama@example.com"]
    assert xero_invoice(xero_site, draft.number)["Status"] == "AUTHORISED"


@pytest.mark.parametrize("order_now", ["confirmed", "cancelled"])
def test_editing_a_contact_already_in_xero_updates_it_there(xero_connected, xero_site, order_now):
    # given a customer in Xero whose order is still confirmed, or was cancelled since (its invoice
    # stays in Xero, so the bookkeeper still deals with this customer)
    contact = a_person("Aroha", "Walker", "aroha@example.com")
    sale = beanie_order(contact)
    push_now()
    if order_now == "cancelled":
        services.sale_cancel(sale=sale)
    xero_site.reset_calls()

    # when staff correct the customer's email and phone on the website
    services.contact_update(contact=contact, email="aroha.walker@example.org", phone="021 555 0100")
    push_now()

    # then the same Xero contact shows them
    [xero_contact] = xero_site.contacts()
    assert xero_contact["EmailAddress"] == "aroha.walker@example.org"
    assert [phone["PhoneNumber"] for phone in xero_contact["Phones"] if phone.get("PhoneNumber")] == [
        "021 555 0100"]
    assert link_of(RecordKind.CONTACT, contact).state == XeroLink.State.SYNCED


# --- Edits Xero refuses, and what is never propagated ---------------------------------------------------


@pytest.mark.parametrize("paid_by", ["bookkeeper in full", "website card receipt in part"])
def test_editing_an_order_paid_in_xero_ends_locked_after_one_call(xero_connected, xero_site, paid_by):
    # given an order in Xero with a payment on it: reconciled by the bookkeeper from the bank feed, or
    # part-paid by card at checkout and pushed by us
    sale = beanie_order()
    if paid_by == "website card receipt in part":
        services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("50.00"))
    push_now()
    before = xero_invoice(xero_site, sale.number)
    if paid_by == "bookkeeper in full":
        xero_site.record_bank_payment(before["InvoiceID"], amount=Decimal("89.40"), account_code="090")
        before = xero_invoice(xero_site, sale.number)
    xero_site.reset_calls()

    # when staff change a line description on the website and it is pushed
    services.sale_update(sale=sale, lines=[item("Merino beanie (charcoal)", "2", "39.95"), shipping()])
    push_now()

    # then Xero was asked once, refused, and the admin shows the sale locked with Xero's reason
    assert api_calls(xero_site) == [("POST", "/Invoices")]
    link = link_of(RecordKind.SALE, sale)
    assert link.state == XeroLink.State.LOCKED
    [refusal] = xero_site.calls_to("POST", "/Invoices")[0]["response_json"]["Invoices"][0]["ValidationErrors"]
    assert "payment" in refusal["Message"]
    assert refusal["Message"] in link.last_error
    # and Xero's invoice is as it was
    assert xero_invoice(xero_site, sale.number) == before
    assert before["LineItems"][0]["Description"] == "Merino beanie"

    # when staff edit it again
    services.sale_update(sale=sale, reference="Gift")
    push_now()

    # then no further call is made: no retry loop against a refusal
    assert api_calls(xero_site) == [("POST", "/Invoices")]
    assert link_of(RecordKind.SALE, sale).state == XeroLink.State.LOCKED


def test_a_cancelled_unpaid_order_voids_its_own_xero_invoice_in_one_call_then_none(xero_connected, xero_site):
    # given an unpaid order in Xero, and another cancelled before it ever reached Xero
    sale = beanie_order()
    push_now()
    before = xero_invoice(xero_site, sale.number)
    never_sent = beanie_order()
    services.sale_cancel(sale=never_sent)
    xero_site.reset_calls()

    # when the first is cancelled on the website (nothing was received, so there is nothing to refund) and a
    # sync runs
    services.sale_cancel(sale=sale)
    push_now()

    # then Xero was asked once to void it: an update addressed by the id of the invoice the website created,
    # never a new invoice
    assert api_calls(xero_site) == [("POST", "/Invoices")]
    [[sent]] = [call["request_json"]["Invoices"] for call in xero_site.calls_to("POST", "/Invoices")]
    assert (sent["InvoiceID"], sent["Status"]) == (before["InvoiceID"], "VOIDED")
    # and Xero keeps that one invoice, voided, for what it was
    after = xero_invoice(xero_site, sale.number)
    assert (after["InvoiceID"], after["Status"], after["Total"]) == (before["InvoiceID"], "VOIDED", Decimal("89.40"))
    assert link_of(RecordKind.SALE, sale).state == XeroLink.State.SYNCED
    # and the one cancelled before reaching Xero left nothing there to void
    assert never_sent.number not in {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}
    assert outbox_rows() == []

    # when another sync runs with nothing changed
    xero_site.reset_calls()
    push_now()

    # then the voided invoice costs no further call
    assert api_calls(xero_site) == []


def test_deleting_a_receipt_or_an_order_on_the_website_deletes_nothing_in_xero(xero_connected, xero_site):
    # given a paid order in Xero
    sale = beanie_order()
    receipt = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("89.40"))
    push_now()
    xero_site.reset_calls()

    # when staff delete the receipt and then the order (with its lines) and a sync runs
    receipt.delete()
    Sale.objects.get(pk=sale.pk).delete()
    push_now()

    # then nothing was sent, and Xero still has the payment and the paid invoice
    assert api_calls(xero_site) == []
    [payment] = xero_site.payments()
    assert (payment["Status"], payment["Amount"]) == ("AUTHORISED", Decimal("89.40"))
    assert xero_invoice(xero_site, sale.number)["Status"] == "PAID"


def test_only_receipts_of_methods_set_to_push_reach_xero(xero_connected, xero_site):
    # given cash (set to neither: the setup gate wants every active method decided) and bank transfers
    # (pulled from Xero, so never pushed)
    cash = a_payment_method("cash", "Cash")
    configuration.payment_method_configure(payment_method=cash, direction="none")
    transfer = a_payment_method("transfer", "Bank transfer")
    configuration.payment_method_configure(payment_method=transfer, direction="pull", account_code="090")
    # and an order paid partly in cash, partly by transfer and partly by card
    sale = beanie_order()
    cash_receipt = services.receipt_record(sale=sale, payment_method=cash, amount=Decimal("20.00"))
    transfer_receipt = services.receipt_record(sale=sale, payment_method=transfer, amount=Decimal("19.40"))
    card_receipt = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("50.00"))

    # when it is pushed
    push_now()

    # then only the card payment reached Xero, in one call of one payment
    assert elements_sent(xero_site, "PUT", "Payments", "Payments") == [1]
    [payment] = xero_site.payments()
    assert payment["Reference"].startswith(f"WEB-R{card_receipt.pk:06d}")
    assert (payment["Amount"], payment["Account"]["Code"]) == (Decimal("50.00"), "620")
    invoice = xero_invoice(xero_site, sale.number)
    assert (invoice["Status"], invoice["AmountPaid"], invoice["AmountDue"]) == (
        "AUTHORISED", Decimal("50.00"), Decimal("39.40"))
    assert not XeroLink.objects.filter(kind=RecordKind.RECEIPT, local_id__in=[cash_receipt.pk, transfer_receipt.pk],
                                       xero_id__isnull=False).exists()


def test_an_overpayment_xero_would_refuse_is_an_error_on_the_receipt_and_costs_no_call(xero_connected, xero_site):
    # given an order of 89.40 paid by card with 100.00, "overpayment allowed" ticked
    sale = beanie_order()
    over = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("100.00"),
                                   overpayment_allowed=True)

    # when it is pushed
    push_now()

    # then the invoice reached Xero, the payment was never sent, and the receipt says why in staff's words
    assert xero_invoice(xero_site, sale.number)["Status"] == "AUTHORISED"
    assert xero_site.payments() == []
    assert ("PUT", "/Payments") not in api_calls(xero_site)
    link = link_of(RecordKind.RECEIPT, over)
    assert link.state == XeroLink.State.ERROR
    assert "Xero refuses payments above the amount due" in link.last_error and sale.number in link.last_error
    assert (RecordKind.RECEIPT, over.pk) not in outbox_rows()


def test_an_edited_receipt_already_in_xero_is_shown_as_a_conflict(xero_connected, xero_site):
    # given a card receipt already paid into Xero
    sale = beanie_order()
    receipt = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("89.40"),
                                      reference="ch_1")
    push_now()
    [before] = xero_site.payments()
    xero_site.reset_calls()

    # when staff correct its amount on the website and a sync runs
    receipt.amount = Decimal("80.00")
    receipt.full_clean()
    receipt.save()
    run = push_now()

    # then the admin shows a conflict saying what to do, and Xero's payment is untouched
    link = link_of(RecordKind.RECEIPT, receipt)
    assert link.state == XeroLink.State.CONFLICT
    assert "Xero payments cannot be edited" in link.last_error
    assert run.failed == {"receipt": 1}
    assert ("PUT", "/Payments") not in api_calls(xero_site)
    assert xero_site.payments() == [before]


# --- Mapping problems fail one sale, and clear once fixed ----------------------------------------------


def push_attempt_held_back() -> SyncAttempt:
    """A push asked for while the Xero settings are incomplete: it does not run, and says what is missing."""
    attempt = sync_attempt(trigger="manual", force=True, pull=False)
    assert (attempt.outcome, attempt.run) == (SyncOutcome.NOT_SET_UP, None)
    return attempt


def test_an_unmapped_tax_code_holds_the_first_push_back_until_it_is_mapped_then_everything_goes(
        xero_connected, xero_site):
    # given two orders, one with a tax code nobody mapped to a Xero tax type, paid by card
    contact = a_contact()
    good = beanie_order(contact)
    exempt = a_sale(contact=contact, lines=[item("Donation", unit_amount="25.00", tax_code="EXEMPT",
                                                 tax_rate=Decimal("0"))])
    receipt = services.receipt_record(sale=exempt, payment_method=card(), amount=Decimal("25.00"))
    recorded = outbox_rows()

    # when a push is asked for
    attempt = push_attempt_held_back()

    # then nothing reached Xero (a half-set-up organisation gets no half of the books), the push says which
    # code to map, and every change waits in the outbox
    assert attempt.missing == ("Map EXEMPT to a Xero tax type.",)
    assert api_calls(xero_site) == []
    assert outbox_rows() == recorded

    # when the shop owner maps it (nothing needs requeueing) and a push runs
    configuration.tax_mapping_set(tax_code="EXEMPT", xero_tax_type="ZERORATEDOUTPUT")
    run = push_now()

    # then both orders go, the exempt one zero-rated, for the website's totals
    assert run.failed == {}
    invoice = xero_invoice(xero_site, exempt.number)
    assert invoice["LineItems"][0]["TaxType"] == "ZERORATEDOUTPUT"
    assert invoice["Total"] == Decimal("25.00")
    assert xero_invoice(xero_site, good.number)["Total"] == Decimal("89.40")
    assert link_of(RecordKind.SALE, exempt).state == XeroLink.State.SYNCED
    # and the card payment follows in the same run
    [payment] = xero_site.payments()
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert payment["Reference"].startswith(f"WEB-R{receipt.pk:06d}")
    assert xero_invoice(xero_site, exempt.number)["Status"] == "PAID"
    assert outbox_rows() == []


def test_once_sales_reach_xero_an_unmapped_tax_code_fails_that_sale_alone_until_it_is_mapped(
        xero_connected, xero_site):
    # given an organisation already receiving the shop's sales (the setup gate holds only the first push)
    contact = a_contact()
    a_sale(contact=contact, lines=[item()])
    push_now()
    # and two new orders, one with a tax code nobody mapped to a Xero tax type, paid by card
    good = beanie_order(contact)
    exempt = a_sale(contact=contact, lines=[item("Donation", unit_amount="25.00", tax_code="EXEMPT",
                                                 tax_rate=Decimal("0"))])
    receipt = services.receipt_record(sale=exempt, payment_method=card(), amount=Decimal("25.00"))

    # when they are pushed
    run = push_now()

    # then the good one is in Xero and the other says what to fix
    held = {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}
    assert good.number in held and exempt.number not in held
    link = link_of(RecordKind.SALE, exempt)
    assert link.state == XeroLink.State.ERROR
    assert "tax code 'EXEMPT'" in link.last_error
    assert "map it on the Xero settings page" in link.last_error
    assert run.failed == {"sale": 1, "receipt": 1}
    assert xero_site.payments() == []
    assert exempt.number in link_of(RecordKind.RECEIPT, receipt).last_error

    # when the shop owner maps it and requeues the sale from the admin
    configuration.tax_mapping_set(tax_code="EXEMPT", xero_tax_type="ZERORATEDOUTPUT")
    links_requeue(links=XeroLink.objects.filter(pk=link.pk))
    push_now()

    # then it goes through, zero-rated, for the website's total
    invoice = xero_invoice(xero_site, exempt.number)
    assert invoice["LineItems"][0]["TaxType"] == "ZERORATEDOUTPUT"
    assert invoice["Total"] == Decimal("25.00")
    link.refresh_from_db()
    assert (link.state, link.last_error) == (XeroLink.State.SYNCED, "")
    # and the card payment that was waiting for it follows in the same run
    [payment] = xero_site.payments()
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert xero_invoice(xero_site, exempt.number)["Status"] == "PAID"


def test_a_line_taxed_at_another_rate_than_its_xero_tax_type_fails_that_sale_alone_until_corrected(
        xero_connected, xero_site):
    # given two orders, one with a GST line charged at 12.5% while Xero's OUTPUT2 is 15%, paid by card
    contact = a_contact()
    good = beanie_order(contact)
    old_rate = a_sale(contact=contact, lines=[item("Donation", unit_amount="25.00", tax_rate=Decimal("12.5"))])
    receipt = services.receipt_record(sale=old_rate, payment_method=card(), amount=Decimal("25.00"))

    # when they are pushed
    run = push_now()

    # then the good one is in Xero and the other says what is wrong, without a call spent on it
    assert {invoice["InvoiceNumber"] for invoice in xero_site.invoices()} == {good.number}
    assert elements_sent(xero_site, "PUT", "Invoices", "Invoices") == [1]
    link = link_of(RecordKind.SALE, old_rate)
    assert link.state == XeroLink.State.ERROR
    assert "charges 12.5% tax but Xero's OUTPUT2 is 15%" in link.last_error
    assert run.failed == {"sale": 1, "receipt": 1}
    assert xero_site.payments() == []
    assert old_rate.number in link_of(RecordKind.RECEIPT, receipt).last_error

    # when staff correct the line's rate
    services.sale_update(sale=old_rate, lines=[item("Donation", unit_amount="25.00")])
    push_now()

    # then it goes through for the website's total
    invoice = xero_invoice(xero_site, old_rate.number)
    assert invoice["Total"] == Decimal("25.00") == selectors.sale_totals(old_rate).total
    link.refresh_from_db()
    assert (link.state, link.last_error) == (XeroLink.State.SYNCED, "")
    # and the card payment that was waiting for it follows in the same run
    [payment] = xero_site.payments()
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert xero_invoice(xero_site, old_rate.number)["Status"] == "PAID"


def test_a_missing_sales_account_holds_the_push_back_until_it_is_set(xero_connected, xero_site):
    # given no default sales account, an order relying on it and one booked to its own account
    configuration.sync_settings_update(default_sales_account_code="")
    contact = a_contact()
    relying = a_sale(contact=contact, lines=[item()])
    own_account = a_sale(contact=contact, lines=[item(account_code="260")])

    # when a push is asked for
    attempt = push_attempt_held_back()

    # then neither reached Xero, and the push says which setting to fill in
    assert api_calls(xero_site) == [] and xero_site.invoices() == []
    [missing] = attempt.missing
    assert "Choose the default sales account" in missing

    # when the account is set (no edit needed: the changes waited) and a push runs
    configuration.sync_settings_update(default_sales_account_code="200")
    push_now()

    # then both reach Xero, the one relying on the default booked to sales
    assert xero_invoice(xero_site, relying.number)["LineItems"][0]["AccountCode"] == "200"
    assert xero_invoice(xero_site, own_account.number)["LineItems"][0]["AccountCode"] == "260"
    assert {link_of(RecordKind.SALE, sale).state for sale in (relying, own_account)} == {XeroLink.State.SYNCED}


# --- Recording changes ---------------------------------------------------------------------------------


def test_saving_without_changing_anything_xero_holds_records_nothing(db):
    # given a contact, an order and a receipt, with their creation already recorded
    contact = a_contact()
    sale = beanie_order(contact)
    receipt = services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=Decimal("10.00"))
    OutboxEntry.objects.all().delete()

    # when they are saved with no change Xero would see
    contact.save()
    services.contact_update(contact=contact, first_name=contact.first_name)
    services.sale_update(sale=sale, notes="Leave at the back door")  # notes stay on the website
    Sale.objects.get(pk=sale.pk).lines.first().save()
    receipt.overpayment_allowed = True
    receipt.save()

    # then nothing is recorded
    assert outbox_rows() == []

    # when a field Xero holds changes
    services.contact_update(contact=contact, phone="021 555 0100")

    # then exactly that contact is recorded
    assert outbox_rows() == [("contact", contact.pk)]


def test_a_rolled_back_change_records_nothing(db):
    # given a contact
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    # when a change and a new order are rolled back
    with pytest.raises(RuntimeError), transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0100")
        beanie_order(contact)
        assert outbox_rows() != []  # recorded inside the transaction...
        raise RuntimeError("payment declined")

    # then ...and gone with it
    assert outbox_rows() == []
    assert Contact.objects.get(pk=contact.pk).phone == ""


def test_editing_or_deleting_an_order_line_records_and_pushes_the_order(xero_connected, xero_site):
    # given an order with two lines in Xero
    sale = a_sale(lines=[item("Beanie", "1", "40.00"), item("Scarf", "1", "60.00")])
    push_now()
    xero_site.reset_calls()
    beanie, scarf = sale.lines.order_by("position")

    # when one line's quantity is changed and the other deleted, on their own
    beanie.quantity = Decimal("3")
    beanie.save()
    assert outbox_rows() == [("sale", sale.pk)]
    scarf.delete()
    assert outbox_rows() == [("sale", sale.pk), ("sale", sale.pk)]
    push_now()

    # then Xero's invoice shows the one line left, at its new quantity
    invoice = xero_invoice(xero_site, sale.number)
    assert [(line["Description"], line["Quantity"]) for line in invoice["LineItems"]] == [("Beanie", Decimal("3"))]
    assert invoice["Total"] == Decimal("120.00")
    assert api_calls(xero_site) == [("POST", "/Invoices")]


def test_bulk_changes_recorded_with_outbox_record_many_reach_xero(xero_connected, xero_site):
    # given three customers in Xero
    customers = [a_person("Customer", str(n), f"customer{n}@example.com") for n in range(3)]
    for customer in customers:
        a_sale(contact=customer, lines=[item()])
    push_now()
    xero_site.reset_calls()
    ids = [customer.pk for customer in customers]

    # when a bulk update (which sends no signals) is recorded explicitly
    with transaction.atomic():
        Contact.objects.filter(pk__in=ids).update(city="Wellington")
        assert outbox_rows() == []  # no signal, no row: hence the explicit call
        outbox_record_many(RecordKind.CONTACT, ids)
    assert outbox_rows() == [("contact", pk) for pk in sorted(ids)]
    push_now()

    # then one write carried the three (besides reading Xero's contacts, to keep names unique), and Xero
    # has the new city
    assert [call for call in api_calls(xero_site) if call[0] != "GET"] == [("POST", "/Contacts")]
    assert elements_sent(xero_site, "POST", "Contacts", "Contacts") == [3]
    for contact in xero_site.contacts():
        assert [address.get("City") for address in contact["Addresses"]] == ["Wellington"], contact["Name"]


def test_with_auto_sync_off_changes_wait_until_a_sync_is_asked_for(xero_connected, xero_site):
    # given auto-sync switched off
    configuration.sync_settings_update(auto_sync=False)

    # when an order comes in
    sale = beanie_order()

    # then it is recorded, but never due however long the site stays quiet
    assert set(outbox_rows()) == {("contact", sale.contact_id), ("sale", sale.pk)}
    a_day_later = timezone.now() + datetime.timedelta(days=1)
    assert not sync_is_due(a_day_later)
    assert sync_run(trigger="auto") is None
    assert api_calls(xero_site) == []
    # (while with auto-sync on it would have been due)
    configuration.sync_settings_update(auto_sync=True)
    assert sync_is_due(a_day_later)
    configuration.sync_settings_update(auto_sync=False)

    # when staff press "Sync now"
    push_now()

    # then the order reaches Xero
    assert xero_invoice(xero_site, sale.number)["Total"] == Decimal("89.40")
    assert outbox_rows() == []


# --- Names Xero refuses, and answers that put two records on one Xero contact ---------------------------


NAME_TAKEN = "The contact name {} is already assigned to another contact."


def test_two_companies_with_one_255_character_name_both_reach_xero_told_apart_by_email(xero_connected, xero_site):
    # given two companies whose names fill Xero's 255 characters, each with an order
    long_name = "Aotearoa Merino Wholesale " + "x" * 229
    first = a_contact(company_name=long_name, email="orders@first.example")
    second = a_contact(company_name=long_name, email="orders@second.example")
    beanie_order(first), beanie_order(second)

    # when they are pushed
    push_now()

    # then both are in Xero, the second's name cut to fit and ending in its email
    names = {contact["EmailAddress"]: contact["Name"] for contact in xero_site.contacts()}
    assert names["orders@first.example"] == long_name
    assert names["orders@second.example"].endswith(" (orders@second.example)")
    assert len(names["orders@second.example"]) <= 255
    assert {link_of(RecordKind.CONTACT, c).state for c in (first, second)} == {XeroLink.State.SYNCED}


def test_a_name_xero_refuses_that_the_website_cannot_make_distinct_is_an_error_at_once_not_retried(
        xero_connected, xero_site):
    from xero_sync.services.links import link_advice, links_with_problems

    # given a website company and Xero already holding every name the website could give it
    acme = a_contact(company_name="Acme Ltd", email="orders@acme.example")
    for name in ("Acme Ltd", "Acme Ltd (orders@acme.example)", f"Acme Ltd (WEB-C{acme.pk:06d})"):
        xero_site.create_contact(Name=name)
    beanie_order(acme)
    # and an unrelated sale made alongside
    other_sale = beanie_order(a_person("Aroha", "Walker", "aroha@example.com"))

    # when it is pushed
    push_now()

    # then the contact shows as an error in Xero's words at once, with what to do, among the current errors
    link = link_of(RecordKind.CONTACT, acme)
    assert link.state == XeroLink.State.ERROR
    assert NAME_TAKEN.format(f"Acme Ltd (WEB-C{acme.pk:06d})") in link.last_error
    assert link_advice(link)
    assert link in links_with_problems()
    # and the unrelated sale reached Xero
    assert xero_invoice(xero_site, other_sale.number)["Total"] == Decimal("89.40")
    # and nothing is left to retry it on every run
    assert (RecordKind.CONTACT, acme.pk) not in outbox_rows()
    xero_site.reset_calls()
    push_now()
    assert [call for call in api_calls(xero_site) if call[1] == "/Contacts" and call[0] != "GET"] == []
    assert link_of(RecordKind.CONTACT, acme).state == XeroLink.State.ERROR


def test_an_answer_putting_two_website_contacts_on_one_xero_contact_stops_no_run(
        xero_connected, xero_site, monkeypatch):
    from xero_sync import mappers
    from xero_sync.services.push import contacts as contact_push

    # given the old way of creating contacts (POST, which Xero matches by name) and names that cannot differ
    monkeypatch.setattr(contact_push, "CONTACT_CREATES", contact_push.CONTACT_UPDATES)
    monkeypatch.setattr(mappers, "xero_name_candidates", lambda contact: [contact.display_name])
    first = a_person("David", "Smith", "david@first.example")
    second = a_person("David", "Smith", "david@second.example")
    beanie_order(first), beanie_order(second)
    # and an unrelated sale made alongside
    other_sale = beanie_order(a_person("Aroha", "Walker", "aroha@example.com"))

    # when Xero answers both David Smiths with one contact
    push_now()

    # then the run did not die: one David Smith is linked, the other shows why not
    states = sorted(link_of(RecordKind.CONTACT, c).state for c in (first, second))
    assert states == [XeroLink.State.ERROR, XeroLink.State.SYNCED]
    # and the unrelated sale reached Xero, in this run and the next
    assert xero_invoice(xero_site, other_sale.number)["Total"] == Decimal("89.40")
    push_now()


def _index_queries_to_push_edits_of(count: int, xero_site) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    contacts = [a_person(f"Person{n}", f"Edited{count}", f"p{n}.{count}@example.com") for n in range(count)]
    for contact in contacts:
        beanie_order(contact=contact)
    push_now()
    for contact in contacts:
        services.contact_update(contact=contact, phone=f"021 {count:03d} {contact.pk:04d}")
    with CaptureQueriesContext(connection) as captured:
        push_now()
    phones = {c.get("ContactNumber"): str(c.get("Phones")) for c in xero_site.contacts()}
    assert all(f"021 {count:03d} {contact.pk:04d}" in phones[f"WEB-C{contact.pk:06d}"] for contact in contacts)
    return sum("xerocontactindex" in query["sql"] for query in captured.captured_queries)


def test_checking_edited_contacts_against_xero_costs_the_same_queries_for_3_or_12(xero_connected, xero_site):
    # given contacts in Xero, edited on the website; then the push's look at the index for changes made in
    # Xero too is one query for the chunk, not one per contact
    assert _index_queries_to_push_edits_of(3, xero_site) == _index_queries_to_push_edits_of(12, xero_site)
