"""Named, expiring leases in the database: one holder at a time, across every worker and machine.

A lease is taken and released with short conditional UPDATEs, never by holding a transaction or a row
lock, so the holder may then make HTTP calls (which must not run inside a transaction). A holder that
crashes holds nothing for long: its lease expires.
"""

import datetime
import time
import uuid
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Lease


def new_owner() -> str:
    return uuid.uuid4().hex


def lease_acquire(*, name: str, owner: str, seconds: float) -> bool:
    """Take the lease if it is free or expired (or already ours, which extends it)."""
    now = timezone.now()
    expires_at = now + datetime.timedelta(seconds=seconds)
    claimable = Lease.objects.filter(name=name).filter(expires_at__lte=now) | Lease.objects.filter(
        name=name, owner=owner
    )
    if claimable.update(owner=owner, expires_at=expires_at):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, owner=owner, expires_at=expires_at)
        return True
    except IntegrityError:
        return False  # it exists and someone else holds it


def lease_release(*, name: str, owner: str) -> None:
    Lease.objects.filter(name=name, owner=owner).update(owner="", expires_at=timezone.now())


def lease_holder(name: str) -> str | None:
    lease = Lease.objects.filter(name=name, expires_at__gt=timezone.now()).first()
    return lease.owner if lease else None


def lease_renew(*, name: str, owner: str, seconds: float) -> bool:
    """Extend a lease we still hold; False when it ran out or someone else holds it now (never retaken
    here: a holder that lost it must stop, not take it back)."""
    now = timezone.now()
    return bool(Lease.objects.filter(name=name, owner=owner, expires_at__gt=now).update(
        expires_at=now + datetime.timedelta(seconds=seconds)))


class LeaseLost(Exception):
    """The lease could not be renewed (it ran out, or another worker took it): stop before the next call."""


class LeaseKeeper:
    """Keeps a short lease alive while its holder works: `keep_alive()` renews it (at most every
    `renew_every` seconds) and raises LeaseLost if it is gone; `sleep()` waits in slices, renewing between
    them, so a long wait for Xero's limits never outlasts the lease."""

    def __init__(self, *, name: str, owner: str, seconds: float, renew_every: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.name, self.owner, self.seconds, self.renew_every = name, owner, seconds, renew_every
        self._clock, self._sleep = clock, sleep
        self._renewed_at = clock()
        self.renewals = 0

    def keep_alive(self) -> None:
        if self._clock() - self._renewed_at < self.renew_every:
            return
        if not lease_renew(name=self.name, owner=self.owner, seconds=self.seconds):
            raise LeaseLost(f"Stopped: this worker's hold on the organisation ({self.name}) ran out or was taken "
                            "by another worker, so it made no further call to Xero; the next run carries on.")
        self._renewed_at = self._clock()
        self.renewals += 1

    def sleep(self, seconds: float) -> None:
        end = self._clock() + seconds
        while (left := end - self._clock()) > 0:
            self._sleep(min(left, self.renew_every))
            self.keep_alive()
