"""Four workers, many sync requests at once: still one conversation with Xero, inside Xero's limits."""

import datetime
import time

import pytest

from ecommerce import services
from ecommerce.models import Contact
from xero_sync.models import OutboxEntry, SyncRun

from .conftest import (
    accounting_calls,
    assert_xero_matches_website,
    place_orders,
    sync_lease_free,
    wait_for,
    website_counts,
    xero_counts,
)

ORDERS = 300
ROUNDS_OF_CHANGES = 10  # each: 10 new orders and 10 contacts' emails changed
WINDOW = datetime.timedelta(seconds=2)
PER_WINDOW = 10


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_four_workers_hold_one_conversation_per_organisation_inside_xeros_limits(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: with four worker processes taking twenty sync_now and four pull_now messages sent at once
    (and more sync_now every half second), Xero never serves two of the organisation's calls at the same
    moment (the emulator's high-water mark of the organisation's calls in flight never exceeds 1), never refuses a
    call for its minute or concurrency limit (no 429 in its call log), and ends holding exactly as many
    contacts, invoices and payments as the website has, no ContactNumber, InvoiceNumber or payment Reference
    twice, every XeroLink synced.

    Sizes: 300 orders (about 25 calls with the pull), and while the workers run, ten rounds of 10 new orders
    and 10 changed customer emails (the latest email must be the one in Xero); besides the burst, a sync_now
    every 0.5 s while all that goes on and for 5 s after it, so runs follow each other closely on different
    workers. The minute limit is compressed to 10 calls per 2-second window, on the emulator and in our pacing
    (XERO_RATE_WINDOW_SECONDS / XERO_RATE_PER_WINDOW), so the pacing binds: the push alone needs ~5 s of
    windows. Xero's concurrency limit is its real 5.
    """
    # given 300 orders, Xero's limits on (compressed), and four worker processes
    place_orders(ORDERS)
    emulator_limits(per_minute=PER_WINDOW, window_seconds=WINDOW.total_seconds(), concurrent=5)
    workers.start(4, XERO_RATE_WINDOW_SECONDS=str(WINDOW.total_seconds()),
                  XERO_RATE_PER_WINDOW=str(PER_WINDOW))

    xero_site.reset_peak_in_flight()
    # when many syncs and webhook pulls are asked for at once, and more keep coming every half second
    broker.sync_now(20)
    for _ in range(4):
        broker.send("xero_sync.pull_now", trigger="webhook")
    with broker.ticking(every=0.5):
        # and, while they run, the shop keeps taking orders and customers change their emails
        for round_ in range(ROUNDS_OF_CHANGES):
            place_orders(10, prefix=f"Later{round_:02d}x")
            for contact in Contact.objects.order_by("?")[:10]:
                services.contact_update(contact=contact, email=f"new{round_}.{contact.email}")
            time.sleep(0.5)
        wait_for(lambda: xero_counts(xero_site) == website_counts() and not OutboxEntry.objects.exists(),
                 seconds=180, what=f"the push:\n{workers.logs()}")
        time.sleep(5)  # runs keep following each other for a while after the push
    wait_for(lambda: broker.drained() and sync_lease_free(), seconds=120,
             what=lambda: f"the other messages to be taken:\n{workers.logs()}")

    calls = sorted(accounting_calls(xero_site), key=lambda call: call["at"])
    runs = SyncRun.objects.count()
    peak_in_flight = xero_site.peak_in_flight()
    print(f"{runs} runs, {len(calls)} calls, at most {peak_in_flight} in flight at once")
    # then there was one conversation at a time
    assert peak_in_flight <= 1
    assert runs > 3  # several runs did happen, one after another, on different workers
    # and Xero never had to refuse a call
    refused = [(call["at"], call["method"], call["path"]) for call in calls if call["status"] == 429]
    assert refused == []
    # and no window held more calls than Xero allows
    for position, call in enumerate(calls):
        in_window = [other for other in calls[:position + 1] if other["at"] > call["at"] - WINDOW]
        assert len(in_window) <= PER_WINDOW, (call["at"], len(in_window))
    # and Xero holds everything exactly once
    assert_xero_matches_website(xero_site)
