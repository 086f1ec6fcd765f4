"""The access token runs out in the middle of a batch while several workers are busy: one refresh."""

import pytest

from xero_sync.crypto import decrypt_token
from xero_sync.models import OutboxEntry, XeroConnection

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

ORDERS = 300


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_an_access_token_expiring_mid_batch_under_four_busy_workers_is_refreshed_exactly_once(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: when the access token is about to expire in the middle of a push, while four worker
    processes keep taking sync_now and pull_now messages, Xero's token endpoint sees exactly one refresh, no
    call is refused for its token (no 401 or 403), the connection stays connected, and Xero ends holding
    exactly as many contacts, invoices and payments as the website has, no ContactNumber, InvoiceNumber or
    payment Reference twice, every XeroLink synced.

    Sizes: 300 orders, paced at 10 calls per 2-second window on both sides so the push lasts several seconds;
    four workers; a sync_now every 0.5 s and a pull_now with every other one while it runs. "About to expire"
    is what time does: the stored token's expiry moves to 30 s from now (inside our 5-minute refresh margin)
    and the emulator's clock moves 29 min 45 s on, so Xero's copy has 15 s left.
    """
    # given 300 orders, a paced conversation, and four workers kept busy
    place_orders(ORDERS)
    emulator_limits(per_minute=10, window_seconds=2)
    workers.start(4, XERO_RATE_WINDOW_SECONDS="2", XERO_RATE_PER_WINDOW="10")
    with broker.ticking(every=0.5), broker.ticking(task="xero_sync.pull_now", every=1.0):
        broker.sync_now(4)
        wait_for(lambda: 0 < xero_counts(xero_site)[1] < ORDERS, seconds=60,
                 what=f"the push to reach the invoices:\n{workers.logs()}")

        # when the access token is about to expire, here and at Xero, in the middle of the batch
        old_token = token_expires_in(30)
        xero_site.clock.advance(29 * 60 + 45)
        assert not sync_lease_free() and refresh_calls(xero_site) == []

        # then the push goes on to the end
        wait_for(lambda: xero_counts(xero_site) == website_counts() and not OutboxEntry.objects.exists(),
                 seconds=120, what=f"the push to finish:\n{workers.logs()}")
    wait_for(lambda: broker.drained() and sync_lease_free(), seconds=120,
             what=lambda: f"the other messages to be taken:\n{workers.logs()}")

    # and Xero saw exactly one refresh, and never a call it refused for its token
    assert len(refresh_calls(xero_site)) == 1
    assert [call["status"] for call in accounting_calls(xero_site) if call["status"] in (401, 403)] == []
    connection = XeroConnection.objects.get(is_current=True)
    assert connection.status == XeroConnection.Status.ACTIVE
    assert decrypt_token(connection.token_ciphertext)["access_token"] != old_token
    # and Xero holds everything exactly once
    assert_xero_matches_website(xero_site)
