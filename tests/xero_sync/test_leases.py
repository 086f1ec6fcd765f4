"""Named, expiring leases: one holder at a time, across every worker; a crashed holder's lease runs out."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from xero_sync.models import Lease
from xero_sync.services.leases import lease_acquire, lease_holder, lease_release, new_owner

pytestmark = pytest.mark.django_db


def test_a_free_lease_is_taken_and_held_against_everyone_else():
    # when a worker takes a lease nobody holds
    assert lease_acquire(name="xero-sync:a", owner="worker-1", seconds=60)

    # then it holds it, and another worker cannot take it
    assert lease_holder("xero-sync:a") == "worker-1"
    assert not lease_acquire(name="xero-sync:a", owner="worker-2", seconds=60)
    assert lease_holder("xero-sync:a") == "worker-1"
    # while a lease of another name is free
    assert lease_acquire(name="xero-sync:b", owner="worker-2", seconds=60)


def test_the_holder_taking_its_lease_again_extends_it():
    assert lease_acquire(name="xero-sync:a", owner="worker-1", seconds=60)
    first = Lease.objects.get(name="xero-sync:a").expires_at

    assert lease_acquire(name="xero-sync:a", owner="worker-1", seconds=600)

    assert Lease.objects.get(name="xero-sync:a").expires_at >= first + datetime.timedelta(seconds=500)


def test_a_released_lease_is_free_and_only_its_holder_can_release_it():
    assert lease_acquire(name="xero-sync:a", owner="worker-1", seconds=60)

    # when another worker releases it, nothing happens
    lease_release(name="xero-sync:a", owner="worker-2")
    assert lease_holder("xero-sync:a") == "worker-1"

    # when its holder releases it, it is free for the next
    lease_release(name="xero-sync:a", owner="worker-1")
    assert lease_holder("xero-sync:a") is None
    assert lease_acquire(name="xero-sync:a", owner="worker-2", seconds=60)
    assert lease_holder("xero-sync:a") == "worker-2"


def test_a_crashed_holders_lease_runs_out_and_can_then_be_taken():
    # given a holder that took the lease and was killed (it never released it)
    assert lease_acquire(name="xero-sync:a", owner="killed-worker", seconds=60)
    assert not lease_acquire(name="xero-sync:a", owner="worker-2", seconds=60)

    # when its time has passed
    Lease.objects.filter(name="xero-sync:a").update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    # then nobody holds it, and the next worker takes it
    assert lease_holder("xero-sync:a") is None
    assert lease_acquire(name="xero-sync:a", owner="worker-2", seconds=60)
    assert lease_holder("xero-sync:a") == "worker-2"


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_of_eight_workers_taking_a_new_lease_at_once_exactly_one_gets_it():
    # given eight workers, each with its own database connection, starting together
    owners = [new_owner() for _ in range(8)]
    start = threading.Barrier(len(owners))
    won: dict[str, bool] = {}

    def take(owner: str) -> None:
        try:
            start.wait(timeout=10)
            won[owner] = lease_acquire(name="xero-sync:race", owner=owner, seconds=60)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then exactly one holds it, and it is the one the database names
    assert len(won) == len(owners)
    [winner] = [owner for owner, took in won.items() if took]
    assert lease_holder("xero-sync:race") == winner
