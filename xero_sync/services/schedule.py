"""When a sync runs besides the quiet period: the daily run (and the daily books check), and a webhook's
pull that finds another run talking to the organisation."""

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from ..models import SyncRun, SyncSettings
from .books_check import Difference, books_check_watch, months_back
from .configuration import sync_settings
from .connection import connection_current
from .leases import lease_holder
from .sync import SyncOutcome, sync_attempt, sync_lease_name, sync_run

DAILY_RUN_EVERY = datetime.timedelta(hours=24)
BOOKS_CHECK_EVERY = datetime.timedelta(hours=24)


def daily_run_needed(now: datetime.datetime | None = None) -> bool:
    """No run finished well in the last 24 hours: Xero may have changed while the website did not."""
    since = (now or timezone.now()) - DAILY_RUN_EVERY
    return not SyncRun.objects.filter(status=SyncRun.Status.DONE, started_at__gte=since).exists()


def daily_run() -> SyncRun | None:
    """Once a day even when nothing changed on the website: a run that pulls what changed in Xero.
    None: another run did that within the day (or nothing ran: see `sync_run`)."""
    if not daily_run_needed():
        return None
    return sync_run(trigger=SyncRun.Trigger.DAILY, force=True)


def books_check_daily(now: datetime.datetime | None = None) -> list[Difference] | None:
    """Once a day: the books check of this month and the last (the shop's), each new unexplained difference
    noted for the hourly digest. None when it ran within the day or there is no organisation to check."""
    now = now or timezone.now()
    connection = connection_current()
    if connection is None:
        return None
    with transaction.atomic():
        current = SyncSettings.objects.select_for_update().get(pk=sync_settings().pk)
        if current.books_watched_at and current.books_watched_at > now - BOOKS_CHECK_EVERY:
            return None
        current.books_watched_at = now
        current.save(update_fields=["books_watched_at"])
    return books_check_watch(tenant_id=connection.tenant_id, months=months_back(2, today=timezone.localdate(now)))


@dataclass(frozen=True)
class WebhookPull:
    run: SyncRun | None
    # Nothing ran because another run holds the organisation: that run's pull may have read Xero before
    # the change the webhook announced, so this pull should be tried again shortly.
    try_again: bool


def webhook_pull(*, trigger: str = SyncRun.Trigger.WEBHOOK) -> WebhookPull:
    """Pull what changed in Xero now, without pushing (a webhook said something did)."""
    attempt = sync_attempt(trigger=trigger, force=True, push=False)
    return WebhookPull(run=attempt.run, try_again=attempt.outcome == SyncOutcome.BUSY)


def sync_lease_held() -> bool:
    """Another run is talking to the connected organisation now."""
    connection = connection_current()
    return connection is not None and lease_holder(sync_lease_name(connection)) is not None
