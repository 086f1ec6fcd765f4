"""The outbox's whole life: recording which records changed, when the batch is due, the coalesced read a
run works through, and settling what the run finished.

`outbox_record` runs inside the transaction of the change it records: the row commits or rolls back with
it, so a committed change is never lost and a rolled-back one is never sent. One row per record per
transaction is enough (the run reads the record itself, not the row), so saving a sale and replacing its
ten lines writes one row, not eleven. After commit a nudge asks a worker to look once the quiet period is
over; losing the nudge loses nothing, because a beat tick looks every few seconds anyway. The nudge is
whatever the task layer registered with `nudge_handler_set`: the services do not know Celery.
"""

import contextlib
import contextvars
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from ..models import OutboxEntry, OutboxHeld, RecordKind, SyncSettings, XeroConnection

logger = logging.getLogger(__name__)

_suppressed = contextvars.ContextVar("xero_outbox_suppressed", default=False)
_nudge_handler: Callable[[int], None] | None = None
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


def nudge_handler_set(handler: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """What to call after a recording commits, with the seconds to wait: the task layer registers a
    delayed `sync_if_due` at start-up. None: no nudge (the beat tick still finds the rows). Returns the
    handler it replaces, so a caller can put it back."""
    global _nudge_handler
    previous, _nudge_handler = _nudge_handler, handler
    return previous


def nudge_throttle_reset() -> None:
    """Forget when this process last nudged, so the next commit nudges at once (a test that checks the
    nudge must not depend on whether an earlier test in the same process nudged a moment ago)."""
    global _last_nudge
    _last_nudge = -float("inf")


def outbox_record(kind: RecordKind | str, local_id: int) -> None:
    outbox_record_many(kind, [local_id])


def outbox_record_many(kind: RecordKind | str, local_ids: Iterable[int]) -> None:
    """Record changes to many records at once: for bulk paths (bulk_create, QuerySet.update) that send
    no signals. Call it inside the same transaction as the bulk write. A record this transaction has
    already recorded is not recorded again."""
    if _suppressed.get():
        return
    kind = RecordKind(kind).value
    local_ids = list(dict.fromkeys(local_ids))
    connection = transaction.get_connection()
    scope = _transaction_scope(connection)
    if scope is None:  # autocommit: each write is its own transaction
        if _write(kind, local_ids):
            transaction.on_commit(_nudge, robust=True)
        return
    recorded = _recorded_in(connection, scope)
    local_ids = [local_id for local_id in local_ids if (kind, local_id) not in recorded.keys]
    if not _write(kind, local_ids):
        return
    marker = recorded.marker(connection)
    for local_id in local_ids:
        recorded.keys[(kind, local_id)] = marker


def _write(kind: str, local_ids: list[int]) -> bool:
    if not local_ids:
        return False
    now = timezone.now()
    OutboxEntry.objects.bulk_create([OutboxEntry(kind=kind, local_id=local_id, recorded_at=now)
                                     for local_id in local_ids])
    return True


# --- One row per record per transaction --------------------------------------------------------------
# Which records the open transaction has recorded is remembered on the connection. This leans on Django's
# on-commit bookkeeping (django/db/backends/base/base.py, 5.2): every recording registers, through
# transaction.on_commit, a marker callback (one per savepoint stack, reused; it is also the nudge); Django
# drops the callbacks of a savepoint that rolls back and empties the list when the transaction commits or
# rolls back. So a record counts as recorded only while the marker it was recorded under is still in
# connection.run_on_commit: a rolled-back savepoint or transaction records again (a change is never
# lost), and a new transaction starts empty. tests/xero_sync/test_outbox.py guards this on PostgreSQL.


class _Recorded:
    """What one transaction has recorded so far."""

    __slots__ = ("scope", "callbacks", "markers", "keys")

    def __init__(self, scope: tuple):
        self.scope = scope
        self.callbacks: list | None = None  # the connection.run_on_commit list these entries were checked against
        self.markers: dict[tuple, Callable[[], None]] = {}  # savepoint stack -> its marker
        self.keys: dict[tuple[str, int], Callable[[], None]] = {}  # (kind, local id) -> its marker

    def marker(self, connection) -> Callable[[], None]:
        stack = tuple(connection.savepoint_ids)
        marker = self.markers.get(stack)
        if marker is None:
            def marker() -> None:  # a fresh function per stack: its identity is what is looked for
                _nudge()

            transaction.on_commit(marker, robust=True)
            self.markers[stack] = marker
        return marker


def _transaction_scope(connection) -> tuple | None:
    """The transaction the code opened: its outermost atomic block and that block's savepoint (None when
    it is the real transaction), or None in autocommit. A test case's own atomic blocks (Django marks
    them `_from_testcase`, as its durable check does) are not the code's: under them each service call's
    block is a transaction of its own, as it is in production."""
    blocks = connection.atomic_blocks
    for depth, block in enumerate(blocks):
        if not block._from_testcase:
            index = depth - (len(blocks) - len(connection.savepoint_ids))
            return block, connection.savepoint_ids[index] if index >= 0 else None
    return None


def _recorded_in(connection, scope: tuple) -> _Recorded:
    recorded = getattr(connection, "_xero_outbox_recorded", None)
    if recorded is None or recorded.scope[0] is not scope[0] or recorded.scope[1] != scope[1]:
        recorded = _Recorded(scope)
        connection._xero_outbox_recorded = recorded
    if recorded.callbacks is not connection.run_on_commit:
        # Django only appends to this list in place; anything that removes callbacks (a savepoint's
        # rollback, a commit, a rollback) puts a new list there. So only a new list needs looking through.
        live = {id(callback) for _, callback, _ in connection.run_on_commit}
        recorded.markers = {stack: m for stack, m in recorded.markers.items() if id(m) in live}
        recorded.keys = {key: m for key, m in recorded.keys.items() if id(m) in live}
        recorded.callbacks = connection.run_on_commit
    return recorded


def _nudge() -> None:
    # One nudge per few seconds per process is plenty: each only asks "is it due yet?".
    global _last_nudge
    if _nudge_handler is None or not settings.XERO_SYNC_NUDGE or time.monotonic() - _last_nudge < NUDGE_EVERY_SECONDS:
        return
    _last_nudge = time.monotonic()
    debounce = SyncSettings.objects.values_list("debounce_seconds", flat=True).first()
    _nudge_handler((debounce or settings.XERO_SYNC_DEBOUNCE_SECONDS) + 1)


# --- When it is due, and the run's read and settle ------------------------------------------------------


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


def outbox_cutoff() -> int:
    """The newest entry now: a run handles entries up to here, and what is recorded while it runs waits
    for the next run (it may describe an edit made after the run read the record)."""
    return OutboxEntry.objects.aggregate(newest=Max("id"))["newest"] or 0


def outbox_pending(*, cutoff_id: int, now: datetime.datetime, chunk_size: int) -> Iterator[tuple[str, int, int]]:
    """Coalesced: one (kind, local id, newest entry id) per record however many times it changed, oldest
    change first, streamed from the database so a backlog of any size needs the memory of one chunk."""
    rows = (outbox_due_entries(cutoff_id=cutoff_id, now=now).values("kind", "local_id")
            .annotate(newest=Max("id")).order_by("newest").values_list("kind", "local_id", "newest"))
    yield from rows.iterator(chunk_size=chunk_size)


def outbox_settle(*, cutoff_id: int, done: Iterable[tuple[str, int]],
                  retry: dict[tuple[str, int], datetime.datetime], tenant_id=None) -> None:
    """After a run's chunk: drop the entries of records it finished with (up to the cutoff only: a change
    recorded since is still to be sent), and hold back those to retry until their time. What is dropped
    for the run's organisation (`tenant_id`; None: the current one) is held for every other organisation
    this site has been connected to (see "Changing organisation" below)."""
    done = list(dict.fromkeys(done))
    by_kind: dict[str, list[int]] = {}
    for kind, local_id in done:
        by_kind.setdefault(kind, []).append(local_id)
    with transaction.atomic():
        for kind, local_ids in by_kind.items():
            OutboxEntry.objects.filter(kind=kind, local_id__in=local_ids, id__lte=cutoff_id).delete()
        for (kind, local_id), when in retry.items():
            OutboxEntry.objects.filter(kind=kind, local_id=local_id, id__lte=cutoff_id).update(not_before=when)
        _hold_for_other_organisations(tenant_id, done)


# --- Changing organisation ----------------------------------------------------------------------------
# The outbox has no organisation: a change is recorded without knowing where it goes (finding out would
# cost a query in every recording transaction), and a run drops the rows of what it sent to its own
# organisation. Switching to organisation B and back to A would then strand in A whatever B's runs dropped:
# a sale A had in flight when the switch came (its link "in flight", its rows gone), and every record
# changed while B was current (A's links say "synced", with the old content).
#
# Chosen: what a run drops is held for every other organisation this site has been connected to (one
# OutboxHeld row per record, however often it changed), and a run's start moves its organisation's held
# rows back into the outbox. Cheap: with one organisation (the usual case) settling costs one query on the
# tiny connection table and a run's start one on an empty table; everything else that reads the outbox (when
# the batch is due, the backlog, the admin's "waiting" column, the pull's both-sides rule) stays the current
# organisation's without a filter. Rejected: re-recording at run start the links of this organisation that
# are pending or in flight without a row misses the records changed while B was current (their links in A
# are synced); a tenant on each outbox row would have to be filtered by every one of those readers. The
# release is at a run's start, not at connecting: a run of A still going when B was chosen holds rows for B
# after B became current, and those would wait for B's next connect.


def _hold_for_other_organisations(tenant_id, done: list[tuple[str, int]]) -> None:
    if not done:
        return
    if tenant_id is None:
        tenant_id = XeroConnection.objects.filter(is_current=True).values_list("tenant_id", flat=True).first()
    others = list(XeroConnection.objects.exclude(tenant_id=tenant_id).values_list("tenant_id", flat=True))
    if not others:
        return
    now = timezone.now()
    OutboxHeld.objects.bulk_create(
        [OutboxHeld(tenant_id=other, kind=kind, local_id=local_id, held_at=now)
         for other in others for kind, local_id in done], ignore_conflicts=True)


def outbox_release_held(*, tenant_id) -> int:
    """At a run's start (before asking whether a run is due): the changes this organisation missed while
    another was current go back into the outbox, recorded when they were held: due by the usual rule (at
    once when the switch back comes after the quiet period, as it does when staff reconnect). Returns how
    many records."""
    with transaction.atomic():
        held = list(OutboxHeld.objects.select_for_update(skip_locked=True).filter(tenant_id=tenant_id)
                    .values_list("pk", "kind", "local_id", "held_at"))
        if not held:
            return 0
        OutboxEntry.objects.bulk_create([OutboxEntry(kind=kind, local_id=local_id, recorded_at=held_at)
                                         for _, kind, local_id, held_at in held])
        OutboxHeld.objects.filter(pk__in=[pk for pk, *_ in held]).delete()
    logger.info("xero outbox: %d change(s) held for organisation %s are back in the outbox", len(held), tenant_id)
    return len(held)


def outbox_backlog() -> int:
    return OutboxEntry.objects.values("kind", "local_id").distinct().count()
