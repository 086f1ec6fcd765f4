"""Named, expiring leases in the database: one holder at a time, across every worker and machine.

A lease is taken and released with short conditional UPDATEs, never by holding a transaction or a row
lock, so the holder may then make HTTP calls (which must not run inside a transaction). A holder that
crashes holds nothing for long: its lease expires.
"""

import datetime
import uuid

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
