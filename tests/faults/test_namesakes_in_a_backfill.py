"""A push bigger than one chunk of the outbox, with customers who share a name, through a real worker."""

import pytest

from ecommerce import selectors, services
from ecommerce.models import PaymentMethod
from xero_sync.models import SyncRun
from xero_sync.services.push import CHUNK_RECORDS

from .conftest import GST_LINE, assert_xero_matches_website, place_orders, run_once_through_a_worker

# Three outbox records an order (contact, sale, receipt): enough orders for a second chunk
ORDERS_BETWEEN = CHUNK_RECORDS // 3 + 20


def an_order(first_name: str, last_name: str, email: str) -> None:
    contact = services.contact_create(first_name=first_name, last_name=last_name, email=email)
    sale = services.sale_create(contact=contact, lines=[GST_LINE], confirm=True)
    services.receipt_record(sale=sale, payment_method=PaymentMethod.objects.get(code="card"),
                            amount=selectors.sale_totals(sale).total)


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_namesakes_in_different_chunks_of_one_run_each_reach_xero_in_that_run(
        xero_connected, xero_site, workers, broker, emulator_limits):
    """Invariant: one sync run through a worker, over a backlog larger than one chunk of the outbox
    (CHUNK_RECORDS = 1,500 records, ~500 orders), in which two customers are both "David Smith" and two both
    "Aroha Walker" (different emails), one of each pair in the first chunk and the other in the second, leaves
    Xero holding exactly as many contacts, invoices and payments as the website has (namesakes under
    distinguishable names, never merged), no ContactNumber, InvoiceNumber or payment Reference twice, every
    XeroLink synced; and the run reports no failure.

    Sizes: 524 orders (1,572 outbox records: two chunks). No fault is injected: this is what a backfill meets,
    and what the kill test's 1,000 orders would meet with real names.
    """
    # given a backlog of two chunks, with namesakes at both ends
    an_order("David", "Smith", "david.smith@example.com")
    an_order("Aroha", "Walker", "aroha@example.com")
    place_orders(ORDERS_BETWEEN)
    an_order("David", "Smith", "dsmith@example.org")
    an_order("Aroha", "Walker", "aroha.walker@example.org")
    emulator_limits(per_minute=60, window_seconds=1)
    workers.start(XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")

    # when one sync runs
    run_once_through_a_worker(broker, seconds=180)

    # then it pushed everything, without a failure
    run = SyncRun.objects.get()
    assert run.failed == {}, run.errors[:3]
    names = sorted(c["Name"] for c in xero_site.contacts()
                   if c["Name"].startswith(("David Smith", "Aroha Walker")))
    assert len(names) == 4 and len(set(names)) == 4, names
    assert_xero_matches_website(xero_site)
