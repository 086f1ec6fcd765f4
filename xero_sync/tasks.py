"""Celery tasks: thin. Ids (or nothing) in, one service call, time limits. Safe to run twice: the sync
takes a lease, and a second run finds nothing due or someone else's turn."""

import datetime

from celery import shared_task
from django.utils import timezone

from .models import SyncRun
from .services.connection import connection_current
from .services.leases import lease_holder
from .services.notify import digest_send
from .services.sync import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, sync_lease_name, sync_run

LIMITS = {"soft_time_limit": TASK_SOFT_TIME_LIMIT, "time_limit": TASK_TIME_LIMIT, "ignore_result": True}


@shared_task(name="xero_sync.sync_if_due", **LIMITS)
def sync_if_due() -> int | None:
    """The beat tick and the nudge after a change: push (and pull) once the quiet period is over."""
    run = sync_run(trigger=SyncRun.Trigger.AUTO)
    return run.pk if run else None


@shared_task(name="xero_sync.sync_now", **LIMITS)
def sync_now(trigger: str = SyncRun.Trigger.MANUAL) -> int | None:
    """Sync now, ignoring the quiet period ("Sync now", "Send to Xero now", a follow-up run)."""
    run = sync_run(trigger=trigger, force=True)
    return run.pk if run else None


@shared_task(name="xero_sync.pull_now", bind=True, max_retries=20, **LIMITS)
def pull_now(self, trigger: str = SyncRun.Trigger.WEBHOOK) -> int | None:
    """Pull what changed in Xero now (a webhook said something did). If another run holds the
    organisation, try again shortly: that run's pull may have been before the change."""
    run = sync_run(trigger=trigger, force=True, push=False)
    connection = connection_current()
    if run is None and connection is not None and lease_holder(sync_lease_name(connection)):
        raise self.retry(countdown=15)
    return run.pk if run else None


@shared_task(name="xero_sync.sync_daily", **LIMITS)
def sync_daily() -> int | None:
    """Once a day even when nothing changed on the website: pull what changed in Xero."""
    recent = SyncRun.objects.filter(status=SyncRun.Status.DONE,
                                    started_at__gte=timezone.now() - datetime.timedelta(hours=24))
    if recent.exists():
        return None
    run = sync_run(trigger=SyncRun.Trigger.DAILY, force=True)
    return run.pk if run else None


@shared_task(name="xero_sync.notify_digest", **LIMITS)
def notify_digest() -> str | None:
    """Hourly: one mail to ADMINS about records given up on and daily limits reached, if any."""
    return digest_send()
