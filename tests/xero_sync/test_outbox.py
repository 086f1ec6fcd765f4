"""The outbox's life: recording a change (one row per record per transaction), when the batch is due, the
coalesced read a run works through, and settling what the run finished.

The clock is ours to control: `outbox_due_at(...)` and `sync_is_due(now=...)` are asked about chosen
moments, and `OutboxEntry.recorded_at` is set explicitly. Nothing here sleeps.
"""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ecommerce import services
from tests.ecommerce.factories import a_contact, a_sale
from tests.xero_sync.outbox_clock import T, change_at, due_at, seconds
from xero_sync.models import OutboxEntry, OutboxHeld, RecordKind
from xero_sync.services import outbox
from xero_sync.services.configuration import sync_settings
from xero_sync.services.outbox import (
    outbox_cutoff,
    outbox_pending,
    outbox_record,
    outbox_record_many,
    outbox_settle,
    outbox_suppressed,
)
from xero_sync.services.sync import sync_is_due

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


def rows() -> list[tuple[str, int]]:
    return list(OutboxEntry.objects.order_by("id").values_list("kind", "local_id"))


def pending(**kwargs) -> list[tuple[str, int]]:
    kwargs = {"cutoff_id": outbox_cutoff(), "now": timezone.now(), "chunk_size": 50, **kwargs}
    return [(kind, local_id) for kind, local_id, _newest in outbox_pending(**kwargs)]


# --- Recording -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_save_of_a_field_xero_holds_records_its_record():
    # given a contact
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    # when staff change her phone
    services.contact_update(contact=contact, phone="021 555 0100")

    # then the contact is recorded, by id only
    assert rows() == [(RecordKind.CONTACT, contact.pk)]


@pytest.mark.django_db
def test_what_comes_from_xero_is_not_recorded():
    # given writes made by the pull (which suppresses recording, so Xero's own changes are not echoed back)
    with outbox_suppressed():
        contact = a_contact()
        outbox_record_many(RecordKind.CONTACT, [contact.pk, 99])

    # then nothing is recorded
    assert rows() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_rolled_back_transaction_leaves_no_row():
    # given a contact, committed
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    # when a change to her and a new sale are rolled back
    with pytest.raises(RuntimeError), transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0100")
        a_sale(contact=contact, lines=[GST_LINE])
        assert rows() != []  # recorded inside the transaction...
        raise RuntimeError("payment declined")

    # then ...and gone with it
    assert rows() == []


# --- One row per record per transaction ------------------------------------------------------------------
# These run in real transactions on PostgreSQL: they guard the on-commit bookkeeping of Django's the
# outbox relies on to know what the open transaction has recorded.


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_ten_saves_of_one_record_in_one_transaction_write_one_row():
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    # when her phone is changed ten times in one transaction
    with transaction.atomic():
        for n in range(10):
            services.contact_update(contact=contact, phone=f"021 555 010{n}")

    # then one row records her
    assert rows() == [(RecordKind.CONTACT, contact.pk)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_sale_saved_with_its_lines_writes_one_row():
    # when a sale with ten lines is created and then edited, lines and all, in one transaction
    with transaction.atomic():
        sale = a_sale(contact=a_contact(), lines=[GST_LINE] * 10)
        services.sale_update(sale=sale, reference="PO 12", lines=[{**GST_LINE, "quantity": Decimal("3")}] * 10)

    # then the sale is recorded once (and its new contact once)
    assert sorted(rows()) == sorted([(RecordKind.CONTACT, sale.contact_id), (RecordKind.SALE, sale.pk)])


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_savepoint_rolled_back_after_recording_records_again_and_the_row_commits():
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    with transaction.atomic():
        # given a change recorded inside a savepoint that then rolls back
        with pytest.raises(RuntimeError), transaction.atomic():
            services.contact_update(contact=contact, phone="021 555 0100")
            raise RuntimeError("undone")
        assert rows() == []
        # when the outer transaction changes her again
        services.contact_update(contact=contact, city="Nelson")

    # then that change is recorded (the rolled-back row did not count as recorded) and committed
    assert rows() == [(RecordKind.CONTACT, contact.pk)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_an_outer_savepoint_rolled_back_after_an_inner_one_was_released_records_again():
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    with transaction.atomic():
        # given a change recorded in an inner savepoint, released into an outer one that rolls back
        with pytest.raises(RuntimeError), transaction.atomic():
            with transaction.atomic():
                services.contact_update(contact=contact, phone="021 555 0100")
            raise RuntimeError("undone")
        # when the transaction changes her again
        services.contact_update(contact=contact, city="Nelson")

    # then it is recorded
    assert rows() == [(RecordKind.CONTACT, contact.pk)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_savepoint_that_rolls_back_after_the_record_was_recorded_outside_it_keeps_the_row():
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    with transaction.atomic():
        # given a change recorded in the transaction
        services.contact_update(contact=contact, phone="021 555 0100")
        # when a savepoint changes her again and rolls back
        with pytest.raises(RuntimeError), transaction.atomic():
            services.contact_update(contact=contact, city="Nelson")
            raise RuntimeError("undone")

    # then the first change's row stands, alone
    assert rows() == [(RecordKind.CONTACT, contact.pk)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_transactions_write_two_rows_and_a_rolled_back_one_does_not_stop_the_next():
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    # when she is changed in one transaction, then in another
    with transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0100")
    with transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0101")
    # and a third is rolled back, and a fourth commits
    with pytest.raises(RuntimeError), transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0102")
        raise RuntimeError("undone")
    with transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0103")

    # then each committed transaction wrote its row
    assert rows() == [(RecordKind.CONTACT, contact.pk)] * 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_bulk_recording_writes_each_record_once_per_transaction():
    with transaction.atomic():
        outbox_record_many(RecordKind.CONTACT, [1, 2, 2, 3])
        outbox_record_many(RecordKind.CONTACT, [3, 4])
        outbox_record(RecordKind.CONTACT, 1)
        outbox_record_many("sale", [1])  # another kind: another record
        outbox_record(RecordKind.SALE, 1)
    assert rows() == [("contact", 1), ("contact", 2), ("contact", 3), ("contact", 4), ("sale", 1)]

    # and in autocommit each call is its own transaction
    outbox_record(RecordKind.CONTACT, 1)
    outbox_record(RecordKind.CONTACT, 1)
    assert rows()[-2:] == [("contact", 1), ("contact", 1)]


@pytest.mark.django_db
def test_under_a_test_case_transaction_each_service_call_records_as_its_own_transaction():
    # given a test's own transaction around everything (Django marks it as the test case's): the code's
    # transactions are the service calls inside it, as they are in production
    contact = a_contact()
    OutboxEntry.objects.all().delete()

    services.contact_update(contact=contact, phone="021 555 0100")
    services.contact_update(contact=contact, phone="021 555 0101")

    assert rows() == [(RecordKind.CONTACT, contact.pk)] * 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_worker_is_nudged_once_after_commit_and_not_after_a_rollback(settings, monkeypatch, request):
    settings.XERO_SYNC_NUDGE = True
    nudged = []
    previous = outbox.nudge_handler_set(nudged.append)
    request.addfinalizer(lambda: outbox.nudge_handler_set(previous))
    monkeypatch.setattr(outbox, "NUDGE_EVERY_SECONDS", 0)  # the per-process throttle is not under test
    contact = a_contact()
    nudged.clear()

    # when a transaction changes her five times
    with transaction.atomic():
        for n in range(5):
            services.contact_update(contact=contact, phone=f"021 555 010{n}")
        # then nobody is nudged before it commits
        assert nudged == []
    # and once after, to look when the quiet period is over
    assert nudged == [sync_settings().debounce_seconds + 1]

    # when a change is rolled back, nobody is nudged
    with pytest.raises(RuntimeError), transaction.atomic():
        services.contact_update(contact=contact, phone="021 555 0199")
        raise RuntimeError("undone")
    assert nudged == [sync_settings().debounce_seconds + 1]
    assert not connection.run_on_commit


# --- The coalesced read and the settle step ----------------------------------------------------------


@pytest.mark.django_db
def test_a_hundred_edits_of_one_record_are_one_pending_record():
    # given a contact edited a hundred times (a hundred transactions, a hundred rows), and a sale
    contact = a_contact()
    for n in range(100):
        services.contact_update(contact=contact, phone=f"021 555 {n:04d}")
    sale = a_sale(contact=contact, lines=[GST_LINE])
    assert OutboxEntry.objects.filter(kind=RecordKind.CONTACT).count() == 101

    # then a run has two records to send, the one changed first first, each with its newest row
    coalesced = list(outbox_pending(cutoff_id=outbox_cutoff(), now=timezone.now(), chunk_size=10))
    assert [(kind, local_id) for kind, local_id, _ in coalesced] == [(RecordKind.CONTACT, contact.pk),
                                                                     (RecordKind.SALE, sale.pk)]
    newest_contact_row = OutboxEntry.objects.filter(kind=RecordKind.CONTACT).order_by("-id").first()
    assert coalesced[0][2] == newest_contact_row.id


@pytest.mark.django_db
def test_settling_drops_what_the_run_finished_and_keeps_what_was_recorded_after_its_cutoff():
    # given two records changed before a run started, and one of them again while it ran
    change_at(T, local_id=1)
    change_at(T, local_id=2)
    cutoff = outbox_cutoff()
    assert pending(cutoff_id=cutoff) == [(RecordKind.SALE, 1), (RecordKind.SALE, 2)]
    during = change_at(T + seconds(5), local_id=1)
    # (the run does not see the change recorded after its cutoff)
    assert pending(cutoff_id=cutoff) == [(RecordKind.SALE, 1), (RecordKind.SALE, 2)]

    # when the run settles both as done
    outbox_settle(cutoff_id=cutoff, done=[(RecordKind.SALE, 1), (RecordKind.SALE, 2)], retry={})

    # then only the change made during the run is left, for the next run
    assert list(OutboxEntry.objects.values_list("id", flat=True)) == [during.id]
    assert pending() == [(RecordKind.SALE, 1)]


@pytest.mark.django_db
def test_a_record_to_retry_waits_for_its_time():
    # given a record the run could not send
    change_at(T, local_id=1)
    cutoff = outbox_cutoff()
    later = timezone.now() + seconds(300)

    # when the run settles it as one to retry in 300 s
    outbox_settle(cutoff_id=cutoff, done=[], retry={(RecordKind.SALE, 1): later})

    # then its row stays, held back until then: not pending now, pending at that time
    assert OutboxEntry.objects.get().not_before == later
    assert pending() == []
    assert pending(now=later) == [(RecordKind.SALE, 1)]
    assert due_at() == later


# --- When the batch is due: the quiet period and its cap ---------------------------------------------


@pytest.mark.django_db
def test_a_change_is_due_once_the_site_has_been_quiet_for_the_quiet_period():
    # given the default quiet period of 120 s and one change at T
    assert sync_settings().debounce_seconds == 120
    change_at(T)

    # then it is due at T+120 s: not a second before
    assert due_at() == T + seconds(120)
    assert not sync_is_due(now=T)
    assert not sync_is_due(now=T + seconds(119))
    assert sync_is_due(now=T + seconds(121))


@pytest.mark.django_db
def test_a_change_recorded_by_a_real_save_waits_the_quiet_period():
    # given a sale saved through the shop's service (its receiver records the rows)
    a_sale(contact=a_contact(), lines=[GST_LINE])
    recorded = OutboxEntry.objects.order_by("recorded_at")
    assert recorded.exists()
    first, last = recorded.first().recorded_at, recorded.last().recorded_at

    # then it is due 120 s after the last of those rows, not before
    assert due_at() == last + seconds(120)
    assert not sync_is_due(now=first + seconds(60))
    assert sync_is_due(now=last + seconds(121))


@pytest.mark.django_db
def test_a_second_change_during_the_quiet_period_restarts_the_wait():
    # given a change at T
    change_at(T)
    # when another record changes at T+60 s
    change_at(T + seconds(60), local_id=2)

    # then the batch waits for 120 s of quiet after T+60 s
    assert due_at() == T + seconds(180)
    assert not sync_is_due(now=T + seconds(121))
    assert not sync_is_due(now=T + seconds(179))
    assert sync_is_due(now=T + seconds(181))


@pytest.mark.django_db
def test_constant_edits_every_60_seconds_are_pushed_by_the_cap():
    # given edits every 60 s, never quiet for 120 s
    for minute in range(0, 10):
        edit_time = T + seconds(60 * minute)
        # then before each new edit the batch was not yet due (the quiet period never ran out)
        assert not sync_is_due(now=edit_time), f"due before the edit at +{60 * minute} s"
        change_at(edit_time, local_id=minute % 3 + 1)

    # then the cap makes it due 600 s after the first edit, even with an edit landing at that moment
    assert not sync_is_due(now=T + seconds(599))
    change_at(T + seconds(600), local_id=1)
    assert due_at() == T + seconds(600)
    assert sync_is_due(now=T + seconds(600))
    assert sync_is_due(now=T + seconds(601))


@pytest.mark.django_db
def test_retry_rows_are_due_at_their_own_time():
    # given a record whose push failed long ago and is to be retried at T+300 s
    OutboxEntry.objects.create(kind=RecordKind.SALE, local_id=1, recorded_at=T - seconds(3600),
                               not_before=T + seconds(300))

    # then neither the quiet period nor the cap of its old recording makes it due: its own time does
    assert due_at() == T + seconds(300)
    assert not sync_is_due(now=T)
    assert not sync_is_due(now=T + seconds(299))
    assert sync_is_due(now=T + seconds(300))

    # when a fresh change arrives at T, it is due after its own quiet period, before the retry
    change_at(T, local_id=2)
    assert due_at() == T + seconds(120)
    assert not sync_is_due(now=T + seconds(119))
    assert sync_is_due(now=T + seconds(121))


@pytest.mark.django_db
def test_a_later_retry_does_not_delay_a_fresh_change_and_an_earlier_one_comes_first():
    # given a fresh change at T and two retries, one before and one after its due time
    change_at(T, local_id=1)
    OutboxEntry.objects.create(kind=RecordKind.SALE, local_id=2, recorded_at=T - seconds(60),
                               not_before=T + seconds(3600))
    assert due_at() == T + seconds(120)
    OutboxEntry.objects.create(kind=RecordKind.CONTACT, local_id=3, recorded_at=T - seconds(60),
                               not_before=T + seconds(45))

    # then the earliest of them decides
    assert due_at() == T + seconds(45)
    assert not sync_is_due(now=T + seconds(44))
    assert sync_is_due(now=T + seconds(45))


# --- Changing organisation: nothing is stranded ------------------------------------------------------


def _connect_to(xero, tenant_id: str, name: str):
    """What choosing an organisation on Connect does: it becomes the current one (the other is kept)."""
    from xero_sync import client
    from xero_sync.services import configuration
    from xero_sync.services.connection import _connection_activate

    token = client.normalise_token(xero.issue_token(client_id="shop-test-client", tenant_ids=[tenant_id]))
    connection = _connection_activate(tenant={"tenantId": tenant_id, "tenantName": name}, token=token, user=None)
    configuration.chart_refresh(connection=connection)
    return connection


def _push_until_drained(runs: int = 4) -> None:
    from xero_sync.services.sync import sync_run

    for _ in range(runs):
        OutboxEntry.objects.filter(not_before__isnull=False).update(not_before=timezone.now() - seconds(1))
        sync_run(trigger="manual", force=True, pull=False)
        if not OutboxEntry.objects.exists():
            return


@pytest.mark.django_db
def test_records_changed_while_another_organisation_was_current_reach_the_first_one_on_switching_back(
        xero_connected, xero_site):
    from ecommerce.selectors import sale_totals
    from tests.ecommerce.factories import a_payment_method
    from xero_sync.models import XeroLink
    from xero_sync.services.sync import sync_run

    card = a_payment_method("card")
    org_a = str(xero_connected.tenant_id)
    # given organisation A holding one order (contact, invoice, payment)
    first = a_sale(contact=a_contact(first_name="Aroha"), lines=[GST_LINE])
    services.receipt_record(sale=first, payment_method=card, amount=sale_totals(first).total)
    _push_until_drained()
    assert len(xero_site.invoices(tenant_id=org_a)) == 1
    # and a second order whose invoice was in flight when A's run stopped (Xero unavailable mid-push)
    second = a_sale(contact=a_contact(first_name="Mere"), lines=[GST_LINE])
    xero_site.inject_fault("503", method="PUT", path_contains="Invoices", count=50)
    sync_run(trigger="manual", force=True, pull=False)
    xero_site.clear_faults()
    assert XeroLink.objects.get(tenant_id=org_a, kind=RecordKind.SALE, local_id=second.pk).state == "in_flight"

    # when staff connect organisation B, and the shop carries on: the first customer's phone changes, a
    # third order comes in, and B's runs send everything they find
    org_b = xero_site.add_organisation("Other Ltd")
    _connect_to(xero_site, org_b, "Other Ltd")
    services.contact_update(contact=first.contact, phone="021 555 0142")
    third = a_sale(contact=a_contact(first_name="Tane"), lines=[GST_LINE])
    services.receipt_record(sale=third, payment_method=card, amount=sale_totals(third).total)
    _push_until_drained()
    assert not OutboxEntry.objects.exists()
    assert {second.number, third.number} <= {invoice["InvoiceNumber"] for invoice in xero_site.invoices(tenant_id=org_b)}

    # and staff switch back to A
    _connect_to(xero_site, org_a, "Demo Company (NZ)")
    _push_until_drained()

    # then A has every record changed meanwhile: the invoice that was in flight, the new order, the phone
    assert {invoice["InvoiceNumber"] for invoice in xero_site.invoices(tenant_id=org_a)} == {
        first.number, second.number, third.number}
    assert len(xero_site.payments(tenant_id=org_a)) == 2
    [aroha] = [contact for contact in xero_site.contacts(tenant_id=org_a) if contact["Name"].startswith("Aroha")]
    assert any(phone.get("PhoneNumber", "").endswith("0142") for phone in aroha.get("Phones", [])), aroha
    # and nothing of A's is left in flight or waiting, and nothing is held for A any more
    assert list(XeroLink.objects.filter(tenant_id=org_a).exclude(state="synced")
                .values_list("kind", "local_id", "state")) == []
    assert not OutboxEntry.objects.exists()
    assert not OutboxHeld.objects.filter(tenant_id=org_a).exists()


@pytest.mark.django_db
def test_with_one_organisation_settling_holds_nothing_and_with_two_the_other_gets_its_changes_back_due(
        xero_connected, xero_site):
    from xero_sync.services.outbox import outbox_release_held

    # given one organisation: what a run settles is simply gone
    change_at(T, local_id=1)
    outbox_settle(cutoff_id=outbox_cutoff(), done=[(RecordKind.SALE, 1)], retry={},
                  tenant_id=xero_connected.tenant_id)
    assert not OutboxEntry.objects.exists() and not OutboxHeld.objects.exists()

    # given a second organisation connected: a record edited twice and settled for it is held once for the first
    org_b = _connect_to(xero_site, xero_site.add_organisation("Other Ltd"), "Other Ltd")
    change_at(T, local_id=2)
    change_at(T + seconds(1), local_id=2)
    outbox_settle(cutoff_id=outbox_cutoff(), done=[(RecordKind.SALE, 2)], retry={}, tenant_id=org_b.tenant_id)
    assert not OutboxEntry.objects.exists()
    assert list(OutboxHeld.objects.values_list("tenant_id", "kind", "local_id")) == [
        (xero_connected.tenant_id, RecordKind.SALE, 2)]

    # when the first organisation's runs start again, the change is back in the outbox, recorded when it
    # was held: due by the usual quiet period after that
    OutboxHeld.objects.update(held_at=T)
    assert outbox_release_held(tenant_id=org_b.tenant_id) == 0
    assert outbox_release_held(tenant_id=xero_connected.tenant_id) == 1
    assert pending() == [(RecordKind.SALE, 2)]
    assert due_at() == T + seconds(120)
    assert not OutboxHeld.objects.exists()
