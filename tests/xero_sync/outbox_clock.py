"""The outbox's clock, for tests that ask about chosen moments instead of sleeping."""

import datetime

from xero_sync.models import OutboxEntry, RecordKind
from xero_sync.services.configuration import sync_settings
from xero_sync.services.outbox import outbox_due_at

T = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


def change_at(moment: datetime.datetime, local_id: int = 1, kind: str = RecordKind.SALE) -> OutboxEntry:
    """A committed change recorded at `moment` (what a receiver writes, with the time chosen)."""
    return OutboxEntry.objects.create(kind=kind, local_id=local_id, recorded_at=moment)


def due_at() -> datetime.datetime | None:
    current = sync_settings()
    return outbox_due_at(debounce_seconds=current.debounce_seconds, max_wait_seconds=current.max_wait_seconds)
