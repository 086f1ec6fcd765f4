"""kill -9 while Xero holds a refund batch it stored and has not answered: the credit notes and the refund
payments still end up in Xero once each."""

from collections import Counter

import pytest

from xero_sync.models import OutboxEntry, RecordKind, XeroLink

from .conftest import hang_noticed, leases_expire, place_orders, retries_due, sync_lease_free, wait_for

SALES = 60  # two batches of credit notes and two of refund payments
NO_PROGRESS_SECONDS = 300


def nothing_left() -> bool:
    return not OutboxEntry.objects.exists() and sync_lease_free()


def refunds_in_xero(xero) -> tuple[Counter, Counter]:
    notes = Counter(note["CreditNoteNumber"] for note in xero.credit_notes() if note["Status"] != "DELETED")
    references = Counter(payment.get("Reference") for payment in xero.payments()
                         if payment.get("CreditNote") and payment.get("Status") != "DELETED")
    return notes, references


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
@pytest.mark.parametrize("endpoint", ["/CreditNotes", "/Payments"])
def test_a_worker_killed_while_xero_holds_an_unanswered_refund_batch_leaves_each_refund_once(
        xero_connected, xero_site, workers, broker, endpoint):
    """Invariant: a worker killed (SIGKILL) while Xero has stored a batch of credit notes (or of refund
    payments) and not answered it, then restarted, leaves Xero with exactly one credit note per refund,
    numbered like it, and exactly one refund payment per refund, each link synced."""
    from ecommerce import services
    from ecommerce.models import PaymentMethod, Refund, Sale

    # given sixty card-paid sales already in Xero
    place_orders(SALES)
    [worker] = workers.start(loglevel="INFO")
    broker.sync_now()
    wait_for(nothing_left, seconds=NO_PROGRESS_SECONDS, what=lambda: f"the sales to reach Xero:\n{workers.logs()}")
    # and each refunded in full
    card = PaymentMethod.objects.get(code="card")
    for sale in Sale.objects.all():
        services.refund_record(sale=sale, payment_method=card)

    # when Xero stores the first refund write of that kind and holds its answer, and the worker is killed then
    held = hang_noticed(xero_site)
    xero_site.inject_fault("hang", method="PUT", path_contains=endpoint, after_write=True, seconds=8)
    broker.sync_now()
    wait_for(held.is_set, seconds=NO_PROGRESS_SECONDS, every=0.02,
             what=lambda: f"a refund write to be held:\n{workers.logs()}")
    worker.kill_hard()
    xero_site.clear_faults()
    # Xero keeps an Idempotency-Key for minutes only: past that, only looking the refund up by its number
    # (and its payment by its reference) can tell that the held write was stored
    xero_site.clock.advance(7 * 60)

    # and a worker starts again (the dead one's lease and the batch's backoff run out, as time would do)
    leases_expire()
    worker.start()
    for _ in range(3):
        retries_due()
        broker.sync_now()
        wait_for(lambda: not broker.queued() and sync_lease_free(), seconds=NO_PROGRESS_SECONDS,
                 what=lambda: f"the sync after the kill:\n{workers.logs()}")
        if nothing_left():
            break
    wait_for(nothing_left, seconds=NO_PROGRESS_SECONDS, what=lambda: f"the refunds to drain:\n{workers.logs()}")

    # then each refund is in Xero once: one credit note by its number, one refund payment by its reference
    notes, references = refunds_in_xero(xero_site)
    refunds = list(Refund.objects.all())
    assert len(refunds) == SALES
    assert {number for number, seen in notes.items() if seen > 1} == set()
    assert {reference for reference, seen in references.items() if seen > 1} == set()
    assert set(notes) >= {refund.number for refund in refunds}
    assert set(references) == {f"Refund {refund.number}" for refund in refunds}
    states = Counter(XeroLink.objects.filter(kind__in=[RecordKind.REFUND, RecordKind.REFUND_PAYMENT])
                     .values_list("state", flat=True))
    assert states == {XeroLink.State.SYNCED: 2 * SALES}, states
