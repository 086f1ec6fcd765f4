"""Xero's 429s through real workers: a storm of minute-limit refusals, and the daily limit."""

import datetime

import pytest
from django.utils import timezone

from xero_sync.models import OutboxEntry, SyncRun, XeroConnection

from .conftest import (
    accounting_calls,
    assert_xero_matches_website,
    place_orders,
    refresh_calls,
    sync_lease_free,
    token_expires_in,
    wait_for,
    website_counts,
    xero_counts,
)

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]

# Retry-After by method, so each refused call's wait is known from the call log
RETRY_AFTER = {"GET": 1, "POST": 3, "PUT": 2}
# Our clock and the emulator's are the same clock; the log keeps milliseconds (truncated)
CLOCK_SLACK = datetime.timedelta(milliseconds=5)


def paused_connection() -> XeroConnection | None:
    return XeroConnection.objects.filter(paused_until__isnull=False).first()


def done(xero) -> bool:
    return xero_counts(xero) == website_counts() and not OutboxEntry.objects.exists() and sync_lease_free()


def test_in_a_storm_of_429s_no_call_is_made_before_retry_after(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: when half of Xero's answers are minute-limit 429s, no worker calls Xero again for this
    organisation before the Retry-After of the last 429 has passed (checked on the emulator's call log); and
    in the end Xero holds exactly as many contacts, invoices and payments as the website has, no
    ContactNumber, InvoiceNumber or payment Reference twice, every XeroLink synced.

    Sizes: 200 orders, two workers, six sync_now messages at once and a beat-like tick every 2 s (so runs
    follow each other across workers; five 429s in a row on one call end a run, pausing the organisation for a
    window). Retry-After is 1 s for reads, 2 s for creations (PUT: new contacts, invoices and payments), 3 s for
    updates (POST); the emulator's own minute limit is on at 60 per 1-second window, on both sides, so every
    429 is an injected one whose Retry-After is known.
    """
    # given 200 orders, two workers, and a Xero refusing every other call for the minute
    place_orders(200)
    emulator_limits(per_minute=60, window_seconds=1)
    workers.start(2, XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")
    for method, seconds in RETRY_AFTER.items():
        xero_site.inject_fault("429", probability=0.5, method=method, problem="minute", retry_after=seconds)

    # when six syncs are asked for at once (and beat's tick asks again every 2 s while nothing is queued)
    broker.sync_now(6)
    with broker.ticking():
        wait_for(lambda: done(xero_site), seconds=240, what=f"the push:\n{workers.logs()}")
    wait_for(lambda: broker.drained() and sync_lease_free(), seconds=60, what="the last runs to end")

    # then there was a storm
    calls = sorted(accounting_calls(xero_site), key=lambda call: call["at"])
    refused = [call for call in calls if call["status"] == 429]
    print(f"{len(calls)} calls, {len(refused)} refused; runs: {SyncRun.objects.count()}")
    assert len(refused) >= 6
    assert all(call["fault"] == "429" for call in refused)  # Xero's own limit was never reached
    # and after each 429 the organisation's next call waited Retry-After
    for refusal, following in zip(calls, calls[1:], strict=False):
        if refusal["status"] == 429:
            waited = following["at"] - refusal["at"]
            assert waited >= datetime.timedelta(seconds=RETRY_AFTER[refusal["method"]]) - CLOCK_SLACK, \
                (refusal["method"], refusal["path"], refusal["at"], following["at"])
    # and Xero holds everything exactly once
    assert_xero_matches_website(xero_site)


def test_the_daily_limit_pauses_the_organisation_and_it_resumes_when_the_pause_is_over(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: when Xero's daily limit is reached mid-push, the organisation is paused until Xero's
    Retry-After (a day), no worker calls Xero while paused whatever it is asked (sync now, the beat tick, a
    webhook's pull); once the day has passed the beat tick resumes the push, and Xero holds exactly as many
    contacts, invoices and payments as the website has, no ContactNumber, InvoiceNumber or payment Reference
    twice, every XeroLink synced.

    Sizes: 250 orders (5 batches of each kind, ~20 calls with the pull) against a day of 14 calls, two of them
    used by connecting, so the limit falls in the middle of the push. "A day passes" is what time does: the
    emulator's clock moves a day on (its day window empties, its access token dies), and on our side the
    pause's end, the stored token's expiry and the outbox rows' age move into the past.
    """
    # given 250 orders, two workers, and an organisation with 12 calls left today (connecting used two)
    place_orders(250)
    emulator_limits(per_minute=60, window_seconds=1, per_day=14)
    workers.start(2, XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")

    # when a sync is asked for
    broker.sync_now()
    connection = wait_for(paused_connection, seconds=60,
                          what=f"the organisation to be paused:\n{workers.logs()}")
    wait_for(sync_lease_free, seconds=30, what="the paused run to end")

    # then the run stopped at Xero's daily 429 and paused the organisation for the day Xero asked
    calls = accounting_calls(xero_site)
    [refusal] = [call for call in calls if call["status"] == 429]
    assert refusal is calls[-1] and refusal["fault"] is None  # Xero's own limit, and nothing after it
    assert len([call for call in calls if call["status"] == 200]) == 12
    # (Retry-After counts from the oldest call of Xero's day: connecting, seconds before this test's log)
    refused_at = refusal["at"]
    assert refused_at + datetime.timedelta(hours=23, minutes=55) <= connection.paused_until \
        <= refused_at + datetime.timedelta(hours=24, seconds=2), (refused_at, connection.paused_until)
    assert SyncRun.objects.get().status == SyncRun.Status.PAUSED
    assert 0 < xero_counts(xero_site)[2] < website_counts()[2]  # the limit fell in the middle of the push

    # when, while paused, every kind of trigger arrives (and the quiet period is long over)
    OutboxEntry.objects.update(recorded_at=timezone.now() - datetime.timedelta(hours=1))
    for task in ("xero_sync.sync_now", "xero_sync.sync_if_due", "xero_sync.pull_now", "xero_sync.sync_now"):
        broker.send(task)
    wait_for(broker.drained, seconds=60, what="the workers to take every message")

    # then no worker called Xero, and no run started
    assert len(xero_site.calls) == len(calls)
    assert SyncRun.objects.count() == 1

    # when the day has passed, and the beat ticks
    xero_site.clock.advance(24 * 3600 + 60)
    token_expires_in(-60)
    XeroConnection.objects.update(paused_until=timezone.now() - datetime.timedelta(seconds=1))
    OutboxEntry.objects.update(recorded_at=timezone.now() - datetime.timedelta(days=1))
    broker.send("xero_sync.sync_if_due")

    # then the push resumes and finishes, with one token refresh first
    wait_for(lambda: done(xero_site), seconds=120, what=f"the push to resume:\n{workers.logs()}")
    assert len(refresh_calls(xero_site)) == 1
    assert SyncRun.objects.order_by("-started_at").first().status == SyncRun.Status.DONE
    # and Xero holds everything exactly once
    assert_xero_matches_website(xero_site)


def test_a_retry_after_too_long_to_sit_out_pauses_every_worker_until_it_has_passed(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: a minute-limit 429 whose Retry-After (150 s) is longer than a worker sits out inline ends
    the run and pauses the organisation until at least that Retry-After; while paused, no worker calls Xero
    whatever it is asked; when the time has passed the beat tick finishes the push, and Xero holds exactly as
    many contacts, invoices and payments as the website has, no ContactNumber, InvoiceNumber or payment
    Reference twice, every XeroLink synced.

    Sizes: 100 orders, two workers. The 150 s are not waited for: once the test has seen that nothing calls
    Xero while paused, it moves the pause's end into the past (what time does).
    """
    # given 100 orders, two workers, and a Xero that refuses the first invoice call for 150 s
    place_orders(100)
    emulator_limits(per_minute=60, window_seconds=1)
    workers.start(2, XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")
    xero_site.inject_fault("429", method="PUT", path_contains="/Invoices", problem="minute", retry_after=150)

    # when a sync is asked for
    broker.sync_now()
    connection = wait_for(paused_connection, seconds=60,
                          what=f"the organisation to be paused:\n{workers.logs()}")
    wait_for(sync_lease_free, seconds=30, what="the paused run to end")

    # then the organisation is paused for at least the Retry-After, and nothing was called after the 429
    calls = accounting_calls(xero_site)
    refusal = calls[-1]
    assert (refusal["status"], refusal["path"]) == (429, "/api.xro/2.0/Invoices")
    assert refusal["at"] + datetime.timedelta(seconds=150) - CLOCK_SLACK <= connection.paused_until \
        <= refusal["at"] + datetime.timedelta(seconds=155), (refusal["at"], connection.paused_until)

    # when every kind of trigger arrives during the pause
    OutboxEntry.objects.update(recorded_at=timezone.now() - datetime.timedelta(hours=1))
    for task in ("xero_sync.sync_now", "xero_sync.sync_if_due", "xero_sync.pull_now", "xero_sync.sync_now"):
        broker.send(task)
    wait_for(broker.drained, seconds=60, what="the workers to take every message")

    # then no worker called Xero
    assert len(xero_site.calls) == len(calls)

    # when the 150 s have passed, and the beat ticks
    XeroConnection.objects.update(paused_until=timezone.now() - datetime.timedelta(seconds=1))
    broker.send("xero_sync.sync_if_due")

    # then the push finishes, and Xero holds everything exactly once
    wait_for(lambda: done(xero_site), seconds=120, what=f"the push to resume:\n{workers.logs()}")
    assert_xero_matches_website(xero_site)
