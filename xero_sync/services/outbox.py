"""Recording changes for Xero, and deciding when the batch is due.

`outbox_record` runs inside the transaction of the change it records: the row commits or rolls back with
it, so a committed change is never lost and a rolled-back one is never sent. After commit a nudge asks a
worker to look once the quiet period is over; losing the nudge loses nothing, because a beat tick looks
every few seconds anyway.
"""

import contextlib
import contextvars
import datetime
import logging
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from ..models import OutboxEntry, RecordKind, SyncSettings

logger = logging.getLogger(__name__)

_suppressed = contextvars.ContextVar("xero_outbox_suppressed", default=False)
_last_nudge = 0.0
NUDGE_EVERY_SECONDS = 5


@contextlib.contextmanager
def outbox_suppressed() -> Iterator[None]:
    """Writes made inside are not recorded: the pull uses this so what came from Xero is not echoed back."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def outbox_record(kind: RecordKind | str, local_id: int) -> None:
    outbox_record_many(kind, [local_id])


def outbox_record_many(kind: RecordKind | str, local_ids: Iterable[int]) -> None:
    """Record changes to many records at once: for bulk paths (bulk_create, QuerySet.update) that send
    no signals. Call it inside the same transaction as the bulk write."""
    if _suppressed.get():
        return
    now = timezone.now()
    entries = [OutboxEntry(kind=kind, local_id=local_id, recorded_at=now) for local_id in local_ids]
    if not entries:
        return
    OutboxEntry.objects.bulk_create(entries)
    transaction.on_commit(_nudge, robust=True)


def _nudge() -> None:
    # One nudge per few seconds per process is plenty: each only asks "is it due yet?".
    global _last_nudge
    if not settings.XERO_SYNC_NUDGE or time.monotonic() - _last_nudge < NUDGE_EVERY_SECONDS:
        return
    _last_nudge = time.monotonic()
    from ..tasks import sync_if_due  # tasks import services; import here to keep that one-way at load

    debounce = SyncSettings.objects.values_list("debounce_seconds", flat=True).first()
    sync_if_due.apply_async(countdown=(debounce or settings.XERO_SYNC_DEBOUNCE_SECONDS) + 1)


def outbox_due_at(*, debounce_seconds: int, max_wait_seconds: int) -> datetime.datetime | None:
    """When the pending changes should be pushed: once the site has been quiet for the debounce period
    after the newest change, but no later than the cap after the oldest. Retries wait for their own
    time. None: nothing is pending."""
    fresh = OutboxEntry.objects.filter(not_before__isnull=True).aggregate(first=Min("recorded_at"),
                                                                           last=Max("recorded_at"))
    candidates = []
    if fresh["first"]:
        candidates.append(min(fresh["last"] + datetime.timedelta(seconds=debounce_seconds),
                              fresh["first"] + datetime.timedelta(seconds=max_wait_seconds)))
    retry = OutboxEntry.objects.filter(not_before__isnull=False).aggregate(at=Min("not_before"))["at"]
    if retry:
        candidates.append(retry)
    return min(candidates) if candidates else None


def outbox_due_entries(*, cutoff_id: int, now: datetime.datetime):
    """The entries a run handles: all recorded up to the cutoff, except retries not yet due."""
    return OutboxEntry.objects.filter(id__lte=cutoff_id).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))


def outbox_backlog() -> int:
    return OutboxEntry.objects.values("kind", "local_id").distinct().count()
