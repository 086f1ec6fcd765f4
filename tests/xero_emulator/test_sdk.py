"""The unmodified xero-python SDK against the running emulator: the integration the sync app relies on.

xero-python has no setting for its hosts: AccountingApi and IdentityApi take ``base_url``; the token
refresh URL is a class attribute of ``TokenApi`` (patched here for the test). Its urllib3 pool would
silently retry a GET/PUT 429 after sleeping Retry-After (docs §11), so the test swaps in a pool built
with ``retries=False``, as the sync app must.
"""

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import urllib3
from xero_python.accounting import (
    Account,
    AccountingApi,
    Allocation,
    Allocations,
    Contact,
    Contacts,
    CreditNote,
    CreditNotes,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
    Payment,
    PaymentDelete,
    Payments,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import AccountingBadRequestException, RateLimitException
from xero_python.identity import IdentityApi

TIMEOUT = 10  # an int: xero-python ignores a float timeout


@pytest.fixture
def sdk(emulator, monkeypatch):
    monkeypatch.setattr(TokenApi, "refresh_token_url", emulator.token_url)
    store = {"token": emulator.issue_token()}
    # Configuration() returns a copy of the first instance ever built, ignoring its arguments: set the
    # token holder on the copy so an earlier test's credentials do not leak into this one.
    configuration = Configuration()
    configuration.oauth2_token = OAuth2Token(client_id="emulator-client", client_secret="emulator-secret")
    client = ApiClient(
        configuration,
        oauth2_token_getter=lambda: store["token"],
        oauth2_token_saver=lambda token: store.update(token=token),
    )
    client.rest_client.pool_manager = urllib3.PoolManager(retries=False)
    return {
        "store": store,
        "accounting": AccountingApi(client, base_url=emulator.api_url),
        "identity": IdentityApi(client, base_url=emulator.base_url),
    }


def sale(contact_id: str, number: str, quantity: int = 1, unit: str = "10.00") -> Invoice:
    return Invoice(
        type="ACCREC",
        contact=Contact(contact_id=contact_id),
        invoice_number=number,
        date=date(2026, 1, 2),
        due_date=date(2026, 1, 20),
        status="AUTHORISED",
        line_amount_types=LineAmountTypes.EXCLUSIVE,
        line_items=[
            LineItem(
                description="Widget",
                quantity=Decimal(quantity),
                unit_amount=Decimal(unit),
                account_code="200",
                tax_type="OUTPUT2",
            )
        ],
    )


def test_the_sdk_pushes_batches_pages_pulls_and_reads_rate_limits(emulator, sdk):
    accounting, identity = sdk["accounting"], sdk["identity"]

    # Connections tell the SDK which tenant to address
    connections = identity.get_connections(_request_timeout=TIMEOUT)
    assert [c.tenant_name for c in connections] == ["Demo Company (NZ)"]
    tenant = connections[0].tenant_id

    # Contacts in a batch with summarize_errors=False: every element comes back with its status
    contacts = accounting.create_contacts(
        tenant,
        Contacts(
            contacts=[Contact(name="Ann", contact_number="C-1"), Contact(name="ann"), Contact(name="Bob")]
        ),
        summarize_errors=False,
        idempotency_key="contacts-1",
        _request_timeout=TIMEOUT,
    ).contacts
    assert [c.status_attribute_string for c in contacts] == ["OK", "ERROR", "OK"]
    assert contacts[1].has_validation_errors is True
    assert contacts[1].validation_errors[0].message.startswith("The contact name ann is already assigned")
    ann, bob = contacts[0], contacts[2]

    # Invoices in a batch: totals come back as Decimal, dates as dates
    invoices = accounting.create_invoices(
        tenant,
        Invoices(invoices=[sale(ann.contact_id, f"WEB-{n}", quantity=n) for n in range(1, 6)]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    ).invoices
    assert [i.total for i in invoices] == [Decimal("11.50") * n for n in range(1, 6)]
    assert invoices[0].date == date(2026, 1, 2) and invoices[0].status == "AUTHORISED"

    # Payments in a batch, one of them too large
    payments = accounting.create_payments(
        tenant,
        Payments(
            payments=[
                Payment(
                    invoice=Invoice(invoice_id=invoices[0].invoice_id),
                    account=Account(code="090"),
                    amount=Decimal("11.50"),
                    date=date(2026, 1, 3),
                ),
                Payment(
                    invoice=Invoice(invoice_id=invoices[1].invoice_id),
                    account=Account(code="620"),
                    amount=Decimal("99.00"),
                    date=date(2026, 1, 3),
                ),
            ]
        ),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    ).payments
    assert [p.status_attribute_string for p in payments] == ["OK", "ERROR"]
    assert payments[0].amount == Decimal("11.50") and payments[0].payment_type == "ACCRECPAYMENT"

    # Paging through the invoices two at a time
    seen, page = [], 1
    while True:
        result = accounting.get_invoices(tenant, page=page, page_size=2, _request_timeout=TIMEOUT)
        seen += [i.invoice_number for i in result.invoices]
        if page >= result.pagination.page_count:
            break
        page += 1
    assert seen == [f"WEB-{n}" for n in range(1, 6)] and result.pagination.item_count == 5

    # Pulling changes with If-Modified-Since (the SDK sends datetime.isoformat())
    emulator.clock.advance(10)
    since = emulator.clock.now() - timedelta(seconds=1)
    accounting.delete_payment(
        tenant, payments[0].payment_id, PaymentDelete(status="DELETED"), _request_timeout=TIMEOUT
    )
    changed = accounting.get_invoices(tenant, if_modified_since=since, _request_timeout=TIMEOUT).invoices
    assert [i.invoice_number for i in changed] == ["WEB-1"] and changed[0].amount_due == Decimal("11.50")
    assert emulator.calls_to("POST", "/Payments/")[-1]["request_json"] == {"Status": "DELETED"}
    assert (
        accounting.get_contacts(tenant, where="IsCustomer==true", _request_timeout=TIMEOUT).contacts[0].name
        == "Ann"
    )
    assert bob.is_customer is False

    # A 400 surfaces Xero's message as the exception's reason
    with pytest.raises(AccountingBadRequestException) as refused:
        accounting.create_contacts(tenant, Contacts(contacts=[Contact(name="Bob")]), _request_timeout=TIMEOUT)
    assert refused.value.reason.startswith("The contact name Bob is already assigned")

    # A 429 surfaces the limit and Retry-After (not retried behind our back: retries=False)
    emulator.inject_fault("429", retry_after=3)
    with pytest.raises(RateLimitException) as limited:
        accounting.get_contacts(tenant, _request_timeout=TIMEOUT)
    assert limited.value.rate_limit == "minute"
    assert limited.value.headers.get("Retry-After") == "3"
    assert len(emulator.calls_to("GET", "/Contacts")) == 2

    # And a real limit, read from the headers of the last response
    emulator.set_limits(per_minute=1, window_seconds=60)
    emulator.clock.advance(60)  # let the calls above leave the minute window
    _, status, headers = accounting.get_organisations(
        tenant, _return_http_data_only=False, _request_timeout=TIMEOUT
    )
    assert (status, headers["X-MinLimit-Remaining"]) == (200, "0")
    with pytest.raises(RateLimitException) as limited:
        accounting.get_organisations(tenant, _request_timeout=TIMEOUT)
    assert limited.value.headers.get("Retry-After") == "60"


def test_the_sdk_refreshes_an_expired_token_once_and_saves_the_new_pair(emulator, sdk):
    store, accounting = sdk["store"], sdk["accounting"]
    old = dict(store["token"])
    store["token"] = {**old, "expires_at": time.time() - 1}  # the SDK's clock says it has expired

    organisation = accounting.get_organisations(emulator.default_tenant_id, _request_timeout=TIMEOUT)

    assert organisation.organisations[0].name == "Demo Company (NZ)"
    assert len(emulator.calls_to("POST", "/connect/token")) == 1
    assert store["token"]["refresh_token"] != old["refresh_token"]
    assert store["token"]["scope"] == old["scope"]  # a list, as the SDK needs for its next refresh


def test_a_revoked_refresh_token_surfaces_as_invalid_grant(emulator, sdk):
    store, accounting = sdk["store"], sdk["accounting"]
    emulator.revoke_refresh_token(store["token"]["refresh_token"])
    store["token"] = {**store["token"], "expires_at": time.time() - 1}

    with pytest.raises(AccountingBadRequestException) as refused:
        accounting.get_organisations(emulator.default_tenant_id, _request_timeout=TIMEOUT)

    assert refused.value.error_data == {"error": "invalid_grant"}


def test_the_sdks_default_pool_silently_retries_a_dropped_put(emulator):
    # Why the sync app must build its pool with retries=False: urllib3's default Retry re-sends a PUT
    # whose connection dropped, so a write that Xero stored comes back as a duplicate-name ERROR.
    token = emulator.issue_token()
    # Configuration() returns a copy of the first instance ever built, ignoring its arguments: set the
    # token holder on the copy so an earlier test's credentials do not leak into this one.
    configuration = Configuration()
    configuration.oauth2_token = OAuth2Token(client_id="emulator-client", client_secret="emulator-secret")
    client = ApiClient(
        configuration,
        oauth2_token_getter=lambda: token,
        oauth2_token_saver=lambda new_token: None,
    )
    accounting = AccountingApi(client, base_url=emulator.api_url)
    emulator.inject_fault("drop", method="PUT", after_write=True)

    result = accounting.create_contacts(
        emulator.default_tenant_id,
        Contacts(contacts=[Contact(name="Ann")]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    )

    assert len(emulator.calls_to("PUT", "/Contacts")) == 2
    assert result.contacts[0].status_attribute_string == "ERROR"
    assert [c["Name"] for c in emulator.contacts()] == ["Ann"]


def refund_note(contact_id: str, number: str, quantity: int = 3, unit: str = "33.33") -> CreditNote:
    return CreditNote(
        type="ACCRECCREDIT",
        contact=Contact(contact_id=contact_id),
        credit_note_number=number,
        date=date(2026, 1, 5),
        status="AUTHORISED",
        line_amount_types=LineAmountTypes.INCLUSIVE,
        line_items=[
            LineItem(description="Widget returned", quantity=Decimal(quantity), unit_amount=Decimal(unit),
                     account_code="200", tax_type="OUTPUT2")
        ],
    )  # fmt: skip


def test_the_sdk_calls_the_sync_makes_for_credit_notes_allocations_and_refunds(emulator, sdk):
    accounting, tenant = sdk["accounting"], emulator.default_tenant_id
    ann = accounting.create_contacts(tenant, Contacts(contacts=[Contact(name="Ann")]), _request_timeout=TIMEOUT)
    ann_id = ann.contacts[0].contact_id
    invoices = accounting.create_invoices(
        tenant, Invoices(invoices=[sale(ann_id, "WEB-1", quantity=10)]), _request_timeout=TIMEOUT
    ).invoices  # 115.00

    # Credit notes in a batch, keyed by their own numbers, one of them a duplicate
    notes = accounting.create_credit_notes(
        tenant,
        CreditNotes(credit_notes=[refund_note(ann_id, "CN-000042"), refund_note(ann_id, "CN-000042")]),
        summarize_errors=False,
        unitdp=4,
        idempotency_key="credit-notes-1",
        _request_timeout=TIMEOUT,
    ).credit_notes
    assert [n.status_attribute_string for n in notes] == ["OK", "ERROR"]
    assert (notes[0].total, notes[0].total_tax, notes[0].remaining_credit) == (
        Decimal("99.99"), Decimal("13.04"), Decimal("99.99")
    )  # fmt: skip
    assert notes[1].has_errors is True and notes[1].validation_errors[0].message == "Credit Note # must be unique."
    note = notes[0]

    # update_or_create matches by number; a reference change is allowed
    updated = accounting.update_or_create_credit_notes(
        tenant,
        CreditNotes(credit_notes=[CreditNote(credit_note_number="CN-000042", reference="RMA 1")]),
        summarize_errors=False,
        unitdp=4,
        idempotency_key="credit-notes-2",
        _request_timeout=TIMEOUT,
    ).credit_notes
    assert (updated[0].credit_note_id, updated[0].reference) == (note.credit_note_id, "RMA 1")

    # Part allocated to the invoice
    allocations = accounting.create_credit_note_allocation(
        tenant,
        note.credit_note_id,
        Allocations(allocations=[
            Allocation(invoice=Invoice(invoice_id=invoices[0].invoice_id), amount=Decimal("40.00"),
                       date=date(2026, 1, 6))
        ]),
        summarize_errors=False,
        idempotency_key="allocation-1",
        _request_timeout=TIMEOUT,
    ).allocations  # fmt: skip
    assert allocations[0].status_attribute_string == "OK" and allocations[0].amount == Decimal("40.00")
    assert allocations[0].allocation_id

    # The rest refunded by credit note number
    refunds = accounting.create_payments(
        tenant,
        Payments(payments=[
            Payment(credit_note=CreditNote(credit_note_number="CN-000042"), account=Account(code="620"),
                    amount=Decimal("59.99"), date=date(2026, 1, 7), reference="REFUND-42")
        ]),
        summarize_errors=False,
        _request_timeout=TIMEOUT,
    ).payments  # fmt: skip
    assert (refunds[0].status_attribute_string, refunds[0].payment_type) == ("OK", "ARCREDITPAYMENT")
    assert refunds[0].credit_note.credit_note_id == note.credit_note_id

    # Pulled back: the credit note PAID with its allocation and refund, the invoice credited
    since = emulator.clock.now() - timedelta(seconds=5)
    pulled = accounting.get_credit_notes(
        tenant, if_modified_since=since, where='Type=="ACCRECCREDIT"', page=1, page_size=1000, unitdp=4,
        _request_timeout=TIMEOUT,
    )  # fmt: skip
    assert pulled.pagination.item_count == 1
    got = pulled.credit_notes[0]
    assert (got.status, got.remaining_credit) == ("PAID", Decimal("0.00"))
    assert [a.allocation_id for a in got.allocations] == [allocations[0].allocation_id]
    assert [a.invoice.invoice_id for a in got.allocations] == [invoices[0].invoice_id]
    assert [p.payment_id for p in got.payments] == [refunds[0].payment_id]
    invoice = accounting.get_invoice(tenant, invoices[0].invoice_id, _request_timeout=TIMEOUT).invoices[0]
    assert (invoice.amount_due, invoice.amount_credited) == (Decimal("75.00"), Decimal("40.00"))
    assert [(c.credit_note_id, c.applied_amount) for c in invoice.credit_notes] == [
        (note.credit_note_id, Decimal("40.00"))
    ]

    # A refund found by its reference after an unknown outcome, read as the SDK models it
    found = accounting.get_payments(tenant, where='Reference=="REFUND-42"', _request_timeout=TIMEOUT).payments
    assert [(p.payment_id, p.payment_type, p.invoice.type, p.invoice.invoice_id) for p in found] == [
        (refunds[0].payment_id, "ARCREDITPAYMENT", "ACCRECCREDIT", note.credit_note_id)
    ]
    assert found[0].credit_note.credit_note_number == "CN-000042"

    # Xero's refusals surface as the exception's reason
    with pytest.raises(AccountingBadRequestException) as refused:
        accounting.create_credit_note_allocation(
            tenant, note.credit_note_id,
            Allocations(allocations=[Allocation(invoice=Invoice(invoice_id=invoices[0].invoice_id),
                                                amount=Decimal("1.00"), date=date(2026, 1, 8))]),
            _request_timeout=TIMEOUT,
        )  # fmt: skip
    assert refused.value.reason == "Credit Note cannot be allocated as amount is greater than amount outstanding"

    # Deleting the allocation gives the credit back
    deleted = accounting.delete_credit_note_allocations(
        tenant, note.credit_note_id, allocations[0].allocation_id, _request_timeout=TIMEOUT
    )
    assert deleted.is_deleted is True
    again = accounting.get_credit_note(tenant, note.credit_note_id, _request_timeout=TIMEOUT).credit_notes[0]
    assert (again.status, again.remaining_credit) == ("AUTHORISED", Decimal("40.00"))
