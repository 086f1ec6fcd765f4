"""When the recorded changes are due: the quiet period, its cap, the settings, retries, the beat tick
that recovers a lost nudge, and the nudge itself on the real broker.

The clock is ours to control: `sync_is_due(now=...)` and `outbox_due_at(...)` are asked about chosen
moments, and `OutboxEntry.recorded_at` is set explicitly. Nothing here sleeps.
"""

import datetime
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from ecommerce import selectors
from ecommerce.services import receipt_record
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync import tasks
from xero_sync.models import OutboxEntry, RecordKind, SyncRun, XeroLink
from xero_sync.services import outbox
from xero_sync.services.configuration import sync_settings, sync_settings_update
from xero_sync.services.outbox import outbox_due_at
from xero_sync.services.sync import sync_is_due

T = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


def change_at(moment: datetime.datetime, local_id: int = 1, kind: str = RecordKind.SALE) -> OutboxEntry:
    """A committed change recorded at `moment` (what a receiver writes, with the time chosen)."""
    return OutboxEntry.objects.create(kind=kind, local_id=local_id, recorded_at=moment)


def due_at() -> datetime.datetime | None:
    current = sync_settings()
    return outbox_due_at(debounce_seconds=current.debounce_seconds, max_wait_seconds=current.max_wait_seconds)


# --- The quiet period and its cap ----------------------------------------------------------------------


@pytest.mark.django_db
def test_nothing_recorded_is_never_due():
    # given an empty outbox
    # then nothing is due, however long we wait
    assert due_at() is None
    assert not sync_is_due(now=T + datetime.timedelta(days=30))


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
def test_the_quiet_period_and_cap_staff_set_take_effect():
    # given staff set a 30 s quiet period and a 90 s cap on the settings page
    sync_settings_update(debounce_seconds=30, max_wait_seconds=90)
    change_at(T)

    # then a single change is due after 30 s
    assert due_at() == T + seconds(30)
    assert not sync_is_due(now=T + seconds(29))
    assert sync_is_due(now=T + seconds(31))

    # and edits every 20 s are pushed by the 90 s cap
    for step in range(1, 5):
        change_at(T + seconds(20 * step), local_id=step + 1)
    assert due_at() == T + seconds(90)
    assert not sync_is_due(now=T + seconds(89))
    assert sync_is_due(now=T + seconds(90))

    # when staff lengthen the quiet period again
    sync_settings_update(debounce_seconds=300, max_wait_seconds=900)
    # then the same rows wait for the new one (last edit at T+80 s)
    assert due_at() == T + seconds(380)
    assert not sync_is_due(now=T + seconds(379))
    assert sync_is_due(now=T + seconds(381))


@pytest.mark.django_db
def test_with_auto_sync_off_nothing_is_ever_due_and_switching_it_on_makes_it_due():
    # given auto-sync switched off and a change long ago
    sync_settings_update(auto_sync=False)
    change_at(T)

    # then it is never due by itself (the change stays recorded for "Sync now")
    assert not sync_is_due(now=T + seconds(121))
    assert not sync_is_due(now=T + seconds(601))
    assert not sync_is_due(now=T + datetime.timedelta(days=7))
    assert OutboxEntry.objects.count() == 1

    # when auto-sync is switched back on, the waiting change is due at once
    sync_settings_update(auto_sync=True)
    assert sync_is_due(now=T + datetime.timedelta(days=7))


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


# --- A lost nudge: the beat tick finds due rows anyway ------------------------------------------------


def test_the_beat_tick_runs_often_enough_to_push_within_15_seconds_of_the_due_time():
    # given the static beat schedule
    ticks = [entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
             if entry["task"] == "xero_sync.sync_if_due"]

    # then the sync_if_due tick is in it, at most 15 s apart: a due batch waits at most that long
    assert len(ticks) == 1
    schedule = ticks[0]["schedule"]
    interval = schedule.total_seconds() if isinstance(schedule, datetime.timedelta) else float(schedule)
    assert 0 < interval <= 15


@pytest.mark.django_db
def test_a_lost_nudge_is_recovered_by_the_beat_tick(xero_connected, xero_site):
    # given nudges switched off (the autouse fixture: as if the broker lost them) and changes committed
    assert django_settings.XERO_SYNC_NUDGE is False
    card = a_payment_method()
    sales = [a_sale(contact=a_contact(first_name=f"Tui{n}"), lines=[GST_LINE]) for n in range(3)]
    for sale in sales:
        receipt_record(sale=sale, payment_method=card, amount=selectors.sale_totals(sale).total)

    # when the beat tick fires before the quiet period is over
    assert tasks.sync_if_due() is None
    # then it does nothing: no run, no call to Xero
    assert SyncRun.objects.count() == 0
    assert xero_site.calls == []

    # when the quiet period has passed (the rows were recorded 121 s ago) and the next tick fires
    OutboxEntry.objects.update(recorded_at=timezone.now() - seconds(121))
    assert sync_is_due()
    run_id = tasks.sync_if_due()

    # then that tick pushed everything: Xero holds each contact, invoice and payment once
    assert run_id is not None
    run = SyncRun.objects.get(pk=run_id)
    assert run.trigger == SyncRun.Trigger.AUTO and run.status == SyncRun.Status.DONE
    assert run.pushed == {"contact": 3, "sale": 3, "receipt": 3}
    numbers = [invoice["InvoiceNumber"] for invoice in xero_site.invoices()]
    assert sorted(numbers) == sorted(sale.number for sale in sales)
    assert len(xero_site.contacts()) == len({c["ContactNumber"] for c in xero_site.contacts()}) >= 3
    assert len(xero_site.payments()) == 3
    assert OutboxEntry.objects.count() == 0
    assert not sync_is_due(now=timezone.now() + datetime.timedelta(days=1))
    assert set(XeroLink.objects.values_list("state", flat=True)) == {XeroLink.State.SYNCED}

    # and a tick after that finds nothing to do and calls nobody
    calls_before = len(xero_site.calls)
    assert tasks.sync_if_due() is None
    assert len(xero_site.calls) == calls_before


# --- The nudge after commit, on the real broker -------------------------------------------------------


def assert_is_a_nudge(headers: dict, published_at: datetime.datetime, countdown: int) -> None:
    assert headers["task"] == "xero_sync.sync_if_due"
    eta = datetime.datetime.fromisoformat(headers["eta"])
    eta = eta if eta.tzinfo else eta.replace(tzinfo=datetime.UTC)
    assert abs((eta - published_at).total_seconds() - countdown) < 5, (eta, published_at, countdown)


@pytest.fixture
def nudges_on(settings, monkeypatch):
    settings.XERO_SYNC_NUDGE = True
    # The per-process throttle (one nudge per few seconds) must not swallow this test's nudge because an
    # earlier test in the same process nudged.
    monkeypatch.setattr(outbox, "_last_nudge", -1e9)


class _FolderQueue:
    """The embedded broker's queue: a folder of message files (kombu's filesystem transport)."""

    def __init__(self):
        self.folder = Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_out"])

    def snapshot(self):
        return set(os.listdir(self.folder))

    def new_headers(self, before) -> list[dict]:
        self.new = sorted(self.snapshot() - before)
        assert all(name.endswith(".celery.msg") for name in self.new), self.new
        return [json.loads((self.folder / name).read_bytes())["headers"] for name in self.new]

    def tidy(self):  # the folder is the embedded run's real queue: leave it as found
        for name in self.new:
            (self.folder / name).unlink(missing_ok=True)


class _RedisQueue:
    """Redis as the broker: kombu keeps the default queue as the list "celery"."""

    def __init__(self):
        import redis

        self.client = redis.Redis.from_url(django_settings.REDIS_URL)

    def snapshot(self):
        return set(self.client.lrange("celery", 0, -1))

    def new_headers(self, before) -> list[dict]:
        self.new = [raw for raw in self.client.lrange("celery", 0, -1) if raw not in before]
        return [json.loads(raw)["headers"] for raw in self.new]

    def tidy(self):  # leave the shared queue as found
        for raw in self.new:
            self.client.lrem("celery", 1, raw)


@pytest.mark.django_db
def test_committing_a_change_publishes_a_delayed_nudge_to_the_configured_broker(
        nudges_on, django_capture_on_commit_callbacks):
    # given the broker the settings configure: files under var/ by default, Redis with REDIS_URL
    queue = _RedisQueue() if django_settings.REDIS_URL else _FolderQueue()
    before = queue.snapshot()
    countdown = sync_settings().debounce_seconds + 1

    # when a change is committed
    published_at = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        a_contact()
    assert callbacks, "the change registered no on-commit nudge"

    # then exactly one new message waits: sync_if_due, due just after the quiet period
    try:
        headers = queue.new_headers(before)
        assert len(headers) == 1, headers
        assert_is_a_nudge(headers[0], published_at, countdown)
    finally:
        queue.tidy()
