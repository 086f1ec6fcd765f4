"""One sync run: take the organisation's lease, push what is pending, then pull what changed in Xero.

The lease makes it one conversation with Xero per organisation at a time, across every worker and
machine; it outlives the task's hard time limit, so a killed worker's lease expires rather than being
taken over while that worker might still be talking to Xero.
"""

import datetime
import logging
import time
from collections import Counter

from django.utils import timezone

from ..errors import XeroAuthorizationError, XeroError
from ..models import SyncRun, XeroConnection
from ..ratelimit import PacedGateway, SyncPaused
from .configuration import sync_settings
from .connection import connection_current, connection_gateway
from .contact_index import ContactIndex
from .cursors import ChangesReader, Progress
from .leases import lease_acquire, lease_release, new_owner
from .outbox import outbox_cutoff, outbox_due_at
from .pull import Pull
from .push import Push
from .run_config import run_config_build

logger = logging.getLogger(__name__)

TASK_SOFT_TIME_LIMIT = 540
TASK_TIME_LIMIT = 600
# Longer than the hard limit: a killed worker's lease runs out only after the worker is surely gone.
LEASE_SECONDS = TASK_TIME_LIMIT + 60
# Stop starting new batches this long into a run, well inside the soft limit.
RUN_BUDGET_SECONDS = 420


def sync_lease_name(connection: XeroConnection) -> str:
    return f"xero-sync:{connection.tenant_id}"


def sync_is_due(now: datetime.datetime | None = None) -> bool:
    current = sync_settings()
    if not current.auto_sync:
        return False
    due_at = outbox_due_at(debounce_seconds=current.debounce_seconds, max_wait_seconds=current.max_wait_seconds)
    return due_at is not None and due_at <= (now or timezone.now())


def sync_run(*, trigger: str, force: bool = False, push: bool = True, pull: bool = True, full: bool = False,
             budget_seconds: float = RUN_BUDGET_SECONDS, progress: Progress | None = None) -> SyncRun | None:
    """Run a sync if one is due (or `force`), unless another worker is already talking to Xero.

    Returns the run, or None when nothing ran (not due, not connected, paused, or someone else's turn).
    `run.work_remains` says the time budget stopped the push with records still to send.
    """
    connection = connection_current()
    if connection is None or connection.status != XeroConnection.Status.ACTIVE:
        return None  # changes keep accumulating in the outbox; they go once reconnected
    now = timezone.now()
    if connection.paused_until and connection.paused_until > now:
        return None
    if not force and not sync_is_due(now):
        return None
    owner, lease = new_owner(), sync_lease_name(connection)
    if not lease_acquire(name=lease, owner=owner, seconds=LEASE_SECONDS):
        return None
    run = SyncRun.objects.create(tenant_id=connection.tenant_id, trigger=trigger, started_at=now)
    gateway = PacedGateway(connection_gateway(connection), connection)
    try:
        # The run's pieces, built once: its settings, the contact index both stages consult, the stages.
        config = run_config_build(connection)
        reader = ChangesReader(tenant_id=connection.tenant_id, gateway=gateway, full=full, progress=progress)
        index = (ContactIndex.for_a_pulling_run if pull else ContactIndex.for_a_push_only_run)(reader=reader, run=run)
        if push:
            report = Push(connection=connection, gateway=gateway, config=config, contact_index=index,
                          cutoff_id=outbox_cutoff(), deadline=time.monotonic() + budget_seconds,
                          progress=progress).run()
            run.pushed, run.failed, run.errors = dict(report.pushed), dict(report.failed), report.errors[:200]
            run.work_remains = report.more_to_do
        if pull:
            pulled = Pull(connection=connection, gateway=gateway, config=config, contact_index=index,
                          reader=reader).run()
            run.pulled = dict(pulled.pulled)
            run.failed = dict(Counter(run.failed) + pulled.failed)
            run.errors = (run.errors + pulled.errors)[:200]
        run.status = SyncRun.Status.DONE
    except SyncPaused as paused:
        XeroConnection.objects.filter(pk=connection.pk).update(paused_until=paused.until, pause_reason=str(paused))
        run.status = SyncRun.Status.PAUSED
        run.errors = [*run.errors, f"{paused} Paused until {paused.until:%Y-%m-%d %H:%M} UTC."]
        logger.warning("xero sync paused for tenant %s until %s: %s", connection.tenant_id, paused.until, paused)
    except (XeroAuthorizationError, XeroError) as error:
        run.status = SyncRun.Status.FAILED
        run.errors = [*run.errors, str(error)]
        logger.warning("xero sync failed for tenant %s: %s", connection.tenant_id, error)
    finally:
        run.calls = gateway.calls
        run.finished_at = timezone.now()
        run.save()
        limits = gateway.gateway.limits
        XeroConnection.objects.filter(pk=connection.pk).update(
            minute_remaining=limits.minute_remaining, day_remaining=limits.day_remaining)
        lease_release(name=lease, owner=owner)
    logger.info("xero sync %s (%s): pushed %s, failed %s, %d calls", run.pk, trigger, run.pushed, run.failed,
                run.calls)
    return run
