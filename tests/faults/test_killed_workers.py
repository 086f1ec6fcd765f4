"""kill -9 at random points of a large push, over and over: Xero still ends up with everything once."""

import time

import pytest

from xero_sync.models import Lease, OutboxEntry, SyncRun

from .conftest import (
    assert_xero_matches_website,
    hang_noticed,
    leases_expire,
    place_orders,
    seeded_random,
    sync_lease_free,
    wait_for,
    website_counts,
    xero_counts,
)

ORDERS = 1000
KILLS = 20
# 1,000 orders are 60 writes of 50 (contacts, invoices, payments). A kill waits for at most 2 new writes and
# every fifth for one held write: at most 44 writes for 20 kills, so every kill falls inside the push.
MOST_WRITES_BEFORE_A_KILL = 2
# Only a bound for a worker that makes no progress at all: the test waits on Xero's call log, not the clock.
NO_PROGRESS_SECONDS = 300


def writes_since(xero, moment) -> int:
    """Writes that reached Xero after `moment` (a held call is logged when it ends, with its start time;
    Xero has stored a write by the time it shows in the log)."""
    return sum(1 for call in list(xero.calls) if call["at"] >= moment and call["method"] in ("POST", "PUT"))


def nothing_left() -> bool:
    return not OutboxEntry.objects.exists() and sync_lease_free()


def state_of_the_sync() -> str:
    """What a test that waited in vain shows: the last runs and the organisation's lease."""
    runs = list(SyncRun.objects.order_by("-id").values_list("id", "status", "pushed", "errors")[:5])
    leases = list(Lease.objects.values_list("name", "owner", "expires_at"))
    return f"last runs {runs}; leases {leases}; outbox rows {OutboxEntry.objects.count()}"


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(900)
def test_a_worker_killed_twenty_times_during_a_large_push_leaves_everything_in_xero_once(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: after a worker is killed with SIGKILL twenty times at chosen points of a 1,000-order push
    (each order a new contact, a confirmed sale and a card receipt) and restarted each time, Xero holds
    exactly as many contacts, invoices and payments as the website has, no ContactNumber, InvoiceNumber or
    payment Reference twice, and every XeroLink is synced.

    Sizes: the issue's own, 1,000 orders and 20 kills. A kill point is decided by the push's progress, never
    by the clock, so a busy machine changes when the kills happen but not where they fall: once the
    restarted worker's run has had 1 or 2 writes reach Xero (seen in Xero's call log; Xero has stored them),
    kill at once, while the worker records the answer or sets out on its next batch; every fifth kill
    instead falls while Xero has stored a write and holds back its answer (an injected "hang" after the
    write), the unknown outcome at its widest. Half the kills take the whole worker (main process and pool:
    a lost machine), half only the pool process running the task (the OOM killer's way: Celery starts a new
    one and redelivers the late-acked message). Xero's limits are on, at 60 calls per 1-second window on
    both sides (a minute compressed 60 times, so the push is not paced for minutes). A killed worker's lease
    would run out by itself: the test moves it into the past instead, which is all that time would do.
    A restarted worker's first write may take a while on a loaded machine (starting Celery and Django, then
    finding out what became of the batch it was killed in): the test waits for it, bounded only by
    NO_PROGRESS_SECONDS.
    """
    # given a thousand web orders waiting in the outbox, and one worker
    place_orders(ORDERS)
    emulator_limits(per_minute=60, window_seconds=1)
    [worker] = workers.start(loglevel="INFO", XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")
    chance = seeded_random(20)
    kills, waits = [], []
    write_held = hang_noticed(xero_site)

    # when, twenty times, the worker is asked to sync and killed at a point of its push's progress
    for number in range(KILLS):
        asked_at, writes_wanted = xero_site.clock.now(), chance.randint(1, MOST_WRITES_BEFORE_A_KILL)
        asked = time.monotonic()
        held_write = number % 5 == 4
        if held_write:
            # (every fifth kill falls while Xero has stored a write and not yet answered it)
            write_held.clear()
            for method in ("POST", "PUT"):
                xero_site.inject_fault("hang", method=method, after_write=True, seconds=8)
        broker.sync_now()
        # While waiting, beat's part: ask again whenever nothing is queued, so a run that ended without
        # writing (it found the lease of the worker just killed, say) does not leave the test waiting.
        with broker.ticking(every=2.0) as beat:
            if held_write:
                wait_for(lambda: write_held.is_set() or nothing_left(), seconds=NO_PROGRESS_SECONDS,
                         what=lambda n=number: f"a write to be held (kill {n + 1}; {beat.state()}; "
                                               f"{state_of_the_sync()}):\n{workers.logs()}", every=0.02)
                time.sleep(0.2)
            else:
                wait_for(lambda since=asked_at, wanted=writes_wanted: writes_since(xero_site, since) >= wanted
                         or nothing_left(), seconds=NO_PROGRESS_SECONDS,
                         what=lambda n=number: f"the worker's writes to reach Xero (kill {n + 1}; {beat.state()}; "
                                               f"{state_of_the_sync()}):\n{workers.logs()}", every=0.02)
        waits.append(round(time.monotonic() - asked, 1))
        last_call = xero_site.calls[-1]
        where = "a write Xero stored, unanswered" if write_held.is_set() and held_write else \
            f"{last_call['method']} {last_call['path'].rsplit('/', 1)[-1]}"
        pending = OutboxEntry.objects.count()
        if number % 2 == 0:
            worker.kill_hard()
            how = "worker"
        else:
            how = "pool process" if worker.kill_pool_child() else "nothing (idle)"
        xero_site.clear_faults()
        kills.append((how, where, pending, xero_counts(xero_site)))
        leases_expire()  # what time does to a dead holder's lease
        if not worker.alive():
            worker.start()

    # and, running for the last time, it is asked once more
    leases_expire()
    broker.sync_now()
    wait_for(lambda: xero_counts(xero_site) == website_counts() and nothing_left(), seconds=NO_PROGRESS_SECONDS,
             what=f"the push to finish after the kills:\n{kills}\n{workers.logs()}")

    # then the kills fell in the middle of the push
    print("kills (what, after which call, outbox rows left, Xero contacts/invoices/payments):", *kills,
          sep="\n  ")
    print("seconds from asking to the kill point, per kill:", waits)
    assert sum(1 for _, _, pending, _ in kills if pending) >= KILLS // 2, kills
    assert sum(1 for _, where, _, _ in kills if where.startswith("a write Xero stored")) >= 2, kills
    # and Xero holds everything exactly once, and every link is synced
    assert_xero_matches_website(xero_site)
