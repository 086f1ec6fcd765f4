"""Celery tasks: thin. Ids (or nothing) in, one service call, time limits. Safe to run twice: the sync
takes a lease, and a second run finds nothing due or someone else's turn."""

import kombu.exceptions
from celery import shared_task

from .models import SyncRun
from .services.attempts import attempts_purge
from .services.notify import digest_send
from .services.schedule import books_check_daily, daily_run, webhook_pull
from .services.sync import TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, sync_run
from .webhook_intake import deliveries_prune

LIMITS = {"soft_time_limit": TASK_SOFT_TIME_LIMIT, "time_limit": TASK_TIME_LIMIT, "ignore_result": True}
WEBHOOK_PULL_RETRY_SECONDS = 15


@shared_task(name="xero_sync.sync_if_due", **LIMITS)
def sync_if_due() -> int | None:
    """The beat tick and the nudge after a change: push (and pull) once the quiet period is over."""
    return _respond(sync_run(trigger=SyncRun.Trigger.AUTO))


@shared_task(name="xero_sync.sync_now", **LIMITS)
def sync_now(trigger: str = SyncRun.Trigger.MANUAL) -> int | None:
    """Sync now, ignoring the quiet period ("Sync now", "Send to Xero now", a follow-up run)."""
    return _respond(sync_run(trigger=trigger, force=True))


@shared_task(name="xero_sync.pull_now", bind=True, max_retries=20, **LIMITS)
def pull_now(self, trigger: str = SyncRun.Trigger.WEBHOOK) -> int | None:
    """Pull what changed in Xero now (a webhook said something did); again shortly if another run held
    the organisation."""
    pulled = webhook_pull(trigger=trigger)
    if pulled.try_again:
        raise self.retry(countdown=WEBHOOK_PULL_RETRY_SECONDS)
    return pulled.run.pk if pulled.run else None


@shared_task(name="xero_sync.sync_daily", **LIMITS)
def sync_daily() -> int | None:
    """Once a day even when nothing changed on the website: pull what changed in Xero; then the books
    check of this month and the last (once a day too), whose new differences the next digest tells."""
    run = daily_run()
    books_check_daily()
    return _respond(run)


@shared_task(name="xero_sync.notify_digest", **LIMITS)
def notify_digest() -> str | None:
    """Hourly: one mail to ADMINS about records given up on and daily limits reached, if any."""
    return digest_send()


@shared_task(name="xero_sync.housekeeping", **LIMITS)
def housekeeping() -> dict:
    """Hourly: forget expired sign-ins (revoking their tokens) and webhook deliveries past Xero's retries."""
    return {"attempts": attempts_purge(), "webhook_deliveries": deliveries_prune()}


BROKER_DOWN_MESSAGE = (
    "The sync could not be started now: the task queue is not answering. Nothing is lost: every change stays "
    "recorded, and the scheduled sync picks the work up by itself once the queue is back.")


def sync_now_request(trigger: str = SyncRun.Trigger.MANUAL) -> bool:
    """Queue a sync now for "Sync now" and "Send to Xero now"; False when the broker is not answering.
    Nothing is lost then: the changes are in the outbox, and the beat tick (every 10 s, once the broker
    answers again) sends them when they are due."""
    try:
        sync_now.delay(trigger=trigger)
    except kombu.exceptions.OperationalError:
        return False
    return True


def nudge(countdown: int) -> None:
    """The outbox's nudge after a change commits (registered at start-up): is the batch due yet?"""
    sync_if_due.apply_async(countdown=countdown)


def _respond(run: SyncRun | None) -> int | None:
    if run is not None and run.work_remains:
        # The time budget stopped it with records still to send: a follow-up run picks up at once (after
        # commit, should a caller have a transaction open).
        sync_now.delay_on_commit(trigger=run.trigger)
    return run.pk if run else None
