"""The broker (Redis) restarted, empty, in the middle of a batch: nothing is lost, because the outbox is in
PostgreSQL and not in the broker."""

import time

import pytest
from django.conf import settings as django_settings

from config.celery import app as site_celery
from xero_sync.models import OutboxEntry

from .conftest import (
    Broker,
    assert_xero_matches_website,
    place_orders,
    sync_lease_free,
    wait_for,
    website_counts,
    xero_counts,
)

ORDERS_BEFORE = 400
ORDERS_DURING_OUTAGE = 5


def _forget_connections() -> None:
    # The app keeps a connection pool and a producer pool; both are rebuilt for the new URL on next use.
    # They come from kombu's process-wide registry, shared with the test's own sender for the same URL, so
    # they are dropped here, never closed.
    site_celery._pool = None
    site_celery.amqp._producer_pool = None


@pytest.fixture
def site_nudges_to(settings):
    """Point the site's own Celery app (the one the after-commit nudge uses) at another broker, nudges on."""
    original = site_celery.conf.broker_url

    def switch(url: str) -> None:
        settings.XERO_SYNC_NUDGE = True
        site_celery.conf.broker_url = url
        _forget_connections()

    yield switch
    site_celery.conf.broker_url = original
    _forget_connections()
    assert django_settings.CELERY_BROKER_URL == original


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_redis_restarted_empty_in_the_middle_of_a_batch_loses_nothing(
        xero_connected, xero_site, workers, private_redis, emulator_limits, site_nudges_to):
    """Invariant: when the broker is killed in the middle of a sync run and comes back empty (no persistence:
    every queued message gone), and orders keep arriving while it is down, then once beat's next tick (or the
    next sync_now) arrives Xero holds exactly as many contacts, invoices and payments as the website has, no
    ContactNumber, InvoiceNumber or payment Reference twice, every XeroLink synced; the worker survives the
    outage and saving an order never waits long for the missing broker.

    Sizes: 400 orders before the outage, 5 during it (each save tries its nudge, ~0.7 s; the outage lasts some
    4 s, two of the worker's reconnect attempts). The push is paced at 10 calls per 3-second window on both
    sides (about 30 calls, some 9 s), so the outage falls inside the run. The broker is a private redis-server
    started by the test (the machine's shared Redis is never touched), killed with SIGKILL and started again
    on the same port.
    """
    # given 400 orders, one worker on a private Redis, and a slow (paced) conversation with Xero
    place_orders(ORDERS_BEFORE)
    emulator_limits(per_minute=10, window_seconds=3)
    [worker] = workers.start(broker_url=private_redis.url, loglevel="INFO", XERO_RATE_WINDOW_SECONDS="3",
                             XERO_RATE_PER_WINDOW="10")
    broker = Broker(private_redis.url)
    try:
        # when a sync is asked for (three times: one runs, the others wait in the broker)
        broker.sync_now(3)
        wait_for(lambda: 0 < xero_counts(xero_site)[1] < ORDERS_BEFORE, seconds=60,
                 what=f"the push to reach the invoices:\n{workers.logs()}")
        assert not sync_lease_free(), "the run should be in the middle of its batches"

        # and Redis dies, and orders keep coming while it is down (their nudges have no broker to go to)
        private_redis.kill()
        site_nudges_to(private_redis.url)
        slowest = 0.0
        for number in range(ORDERS_DURING_OUTAGE):
            started = time.monotonic()
            place_orders(1, prefix=f"Outage{number:02d}x")
            slowest = max(slowest, time.monotonic() - started)

        # and Redis comes back, empty, while the run is still going
        private_redis.start()
        assert not sync_lease_free(), "the outage should have ended before the run"

        # then the run that was going finishes on its own, and the worker is still there
        wait_for(sync_lease_free, seconds=60, what=f"the run to end:\n{workers.logs()}")
        assert worker.alive(), worker.log_tail()
        # and an order saved during the outage took no longer than a moment
        print(f"slowest order save during the outage: {slowest:.2f} s")
        assert slowest < 5, slowest

        # when beat's tick comes again (every 2 s here, whenever nothing is queued)
        with broker.ticking() as beat:
            wait_for(lambda: xero_counts(xero_site) == website_counts() and not OutboxEntry.objects.exists()
                     and sync_lease_free(), seconds=60,
                     what=lambda: f"the worker to take new messages after the outage ({beat.state()}):\n"
                                  f"{worker.log_tail(6000)}")
    finally:
        broker.close()

    # then nothing was lost: Xero holds every order, before and during the outage, exactly once
    assert website_counts() == (ORDERS_BEFORE + ORDERS_DURING_OUTAGE,) * 3
    assert_xero_matches_website(xero_site)
