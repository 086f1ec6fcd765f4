"""The tasks and when they run: the beat tick that recovers a lost nudge, the nudge itself on the real
broker, the follow-up run when the time budget stopped one, the daily run, and a webhook's pull that
finds another run talking to Xero."""

import datetime
import functools
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
from xero_sync.models import OutboxEntry, SyncRun, XeroLink
from xero_sync.services import outbox, sync
from xero_sync.services.configuration import sync_settings
from xero_sync.services.leases import lease_acquire, lease_release
from xero_sync.services.schedule import daily_run_needed, webhook_pull
from xero_sync.services.sync import sync_is_due, sync_lease_name

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


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


# --- Messages on the real broker ----------------------------------------------------------------------


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
    outbox.nudge_throttle_reset()


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


@pytest.fixture
def broker_queue():
    """The broker the settings configure: files under var/ by default, Redis with REDIS_URL."""
    queue = _RedisQueue() if django_settings.REDIS_URL else _FolderQueue()
    queue.new = []
    yield queue
    queue.tidy()


@pytest.mark.django_db
def test_committing_a_change_publishes_a_delayed_nudge_to_the_configured_broker(
        nudges_on, broker_queue, django_capture_on_commit_callbacks):
    before = broker_queue.snapshot()
    countdown = sync_settings().debounce_seconds + 1

    # when a change is committed
    published_at = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        a_contact()
    assert callbacks, "the change registered no on-commit nudge"

    # then exactly one new message waits: sync_if_due, due just after the quiet period
    headers = broker_queue.new_headers(before)
    assert len(headers) == 1, headers
    assert_is_a_nudge(headers[0], published_at, countdown)


@pytest.mark.django_db
def test_a_run_the_time_budget_stopped_enqueues_a_follow_up_after_commit_and_that_one_finishes(
        xero_connected, xero_site, broker_queue, monkeypatch, django_capture_on_commit_callbacks):
    # given three sales waiting, and a run whose time budget is over before it starts a batch
    sales = [a_sale(contact=a_contact(first_name=f"Tui{n}"), lines=[GST_LINE]) for n in range(3)]
    monkeypatch.setattr(tasks, "sync_run", functools.partial(sync.sync_run, budget_seconds=0))
    before = broker_queue.snapshot()

    # when "Sync now" runs, inside a transaction
    with django_capture_on_commit_callbacks() as callbacks:
        run_id = tasks.sync_now(trigger=SyncRun.Trigger.MANUAL)
        # then nothing is enqueued before that transaction commits
        assert broker_queue.new_headers(before) == []
    for callback in callbacks:
        callback()

    # then the run says work remains, and one follow-up sync_now waits, with the same trigger
    run = SyncRun.objects.get(pk=run_id)
    assert run.work_remains
    assert OutboxEntry.objects.exists()
    [follow_up] = broker_queue.new_headers(before)
    assert follow_up["task"] == "xero_sync.sync_now"
    assert "manual" in follow_up["kwargsrepr"]
    broker_queue.tidy()

    # when a worker runs the follow-up with a whole budget
    monkeypatch.undo()
    before = broker_queue.snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        follow_up_id = tasks.sync_now(trigger=SyncRun.Trigger.MANUAL)

    # then it finished the work and asked for no other run
    assert not SyncRun.objects.get(pk=follow_up_id).work_remains
    assert sorted(invoice["InvoiceNumber"] for invoice in xero_site.invoices()) == sorted(s.number for s in sales)
    assert OutboxEntry.objects.count() == 0
    assert broker_queue.new_headers(before) == []


# --- The daily run -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_daily_run_is_needed_when_no_run_finished_well_in_the_last_24_hours():
    now = timezone.now()

    def a_run(hours_ago: float, status: str) -> SyncRun:
        return SyncRun.objects.create(tenant_id="a" * 32, trigger=SyncRun.Trigger.AUTO, status=status,
                                      started_at=now - datetime.timedelta(hours=hours_ago))

    # given no run at all: needed
    assert daily_run_needed(now)
    # given a run that failed an hour ago, and one that finished well 25 hours ago: still needed
    a_run(1, SyncRun.Status.FAILED)
    a_run(25, SyncRun.Status.DONE)
    assert daily_run_needed(now)
    # given a run that finished well 23 hours ago: not needed now, needed an hour and a bit later
    a_run(23, SyncRun.Status.DONE)
    assert not daily_run_needed(now)
    assert daily_run_needed(now + datetime.timedelta(hours=1, minutes=1))


# --- A webhook's pull ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_webhook_pull_is_tried_again_only_while_another_run_holds_the_organisation(xero_connected, xero_site):
    # given another worker in the middle of a sync with this organisation
    lease = sync_lease_name(xero_connected)
    assert lease_acquire(name=lease, owner="another-worker", seconds=600)

    # then the webhook's pull does not run and asks to be tried again, without calling Xero
    pulled = webhook_pull()
    assert (pulled.run, pulled.try_again) == (None, True)
    assert xero_site.calls == []

    # when that worker is done, the pull runs (a pull only) and nothing is left to try again
    lease_release(name=lease, owner="another-worker")
    pulled = webhook_pull()
    assert not pulled.try_again
    assert (pulled.run.trigger, pulled.run.status, pulled.run.pushed) == (
        SyncRun.Trigger.WEBHOOK, SyncRun.Status.DONE, {})
    assert {call["method"] for call in xero_site.calls} == {"GET"}


@pytest.mark.django_db
def test_a_webhook_pull_without_a_connection_is_not_tried_again():
    # given no organisation connected: nothing to pull, and trying again would not change that
    pulled = webhook_pull()
    assert (pulled.run, pulled.try_again) == (None, False)
    assert tasks.pull_now(trigger=SyncRun.Trigger.WEBHOOK) is None
