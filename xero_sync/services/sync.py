"""One sync run: take the organisation's lease, push what is pending, then pull what changed in Xero.

The lease makes it one conversation with Xero per organisation at a time, across every worker and
machine. It is short and renewed as the run goes (before every Xero call, during every wait for Xero's
limits, after every batch and page), so a killed worker blocks the organisation only until it runs out,
and a run of any length (`xero_sync run --full`) keeps it; a renewal that fails stops the run before its
next call, so there are never two holders talking to Xero.
"""

import datetime
import enum
import logging
import time
from collections import Counter
from dataclasses import dataclass

from django.utils import timezone

from .. import wording
from ..errors import XeroError
from ..models import RecordKind, SyncRun, XeroConnection, XeroLink
from ..ratelimit import PacedGateway, SyncPaused
from .configuration import setup_checklist, setup_missing, setup_missing_words, sync_settings
from .connection import connection_current, connection_gateway
from .contact_index import ContactIndex
from .cursors import ChangesReader, Progress, no_progress
from .leases import LeaseKeeper, LeaseLost, lease_acquire, lease_release, new_owner
from .outbox import outbox_cutoff, outbox_due_at, outbox_release_held
from .pull import Pull
from .push import Push
from .run_config import run_config_build

logger = logging.getLogger(__name__)

TASK_SOFT_TIME_LIMIT = 540
TASK_TIME_LIMIT = 600
# Longer than the longest single step between renewals: one Xero call with its token refresh and a 401
# retry (3 x XERO_HTTP_TIMEOUT, 30 s) and the database work of one page or batch. A killed worker holds
# the organisation this long at most.
LEASE_SECONDS = 120
RENEW_EVERY_SECONDS = 10
# Stop starting new batches this long into a run, well inside the soft limit.
RUN_BUDGET_SECONDS = 420
ERRORS_KEPT = 200
ABANDONED = ("The worker running this sync stopped without finishing (killed, or its machine lost); the next run "
             "carried on from where it stopped.")


class SyncOutcome(enum.StrEnum):
    RAN = "ran"  # a run happened: see its status
    NOT_CONNECTED = "not connected"  # no organisation, or it needs reconnecting
    PAUSED = "paused"  # the organisation is paused (Xero's daily limit, an unreadable token key)
    NOT_DUE = "not due"
    BUSY = "busy"  # another worker holds the organisation's lease
    # The Xero settings are not complete (configuration.setup_checklist): nothing was pushed. A run that
    # was asked for (Sync now, `xero_sync run`, the daily run) still pulled; the quiet period's run did not
    # start at all, since pushing is all it is for. The outbox keeps every change.
    NOT_SET_UP = "not set up"


@dataclass(frozen=True)
class SyncAttempt:
    outcome: SyncOutcome
    run: SyncRun | None = None
    connection: XeroConnection | None = None
    missing: tuple[str, ...] = ()  # NOT_SET_UP: what is left to do, one sentence a step


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

    Returns the run, or None when nothing ran (not due, not connected, paused, or someone else's turn:
    `sync_attempt` says which). `run.work_remains` says the time budget stopped the push with records
    still to send.
    """
    return sync_attempt(trigger=trigger, force=force, push=push, pull=pull, full=full,
                        budget_seconds=budget_seconds, progress=progress).run


class LeasedGateway(PacedGateway):
    """The paced gateway of a run that holds a lease: every call first renews it (LeaseLost if gone)."""

    def __init__(self, gateway, connection: XeroConnection, keeper: LeaseKeeper):
        super().__init__(gateway, connection, sleep=keeper.sleep)
        self.keeper = keeper

    def call(self, operation: str, **kwargs) -> dict:
        self.keeper.keep_alive()
        return super().call(operation, **kwargs)


def sync_attempt(*, trigger: str, force: bool = False, push: bool = True, pull: bool = True, full: bool = False,
                 budget_seconds: float = RUN_BUDGET_SECONDS, progress: Progress | None = None) -> SyncAttempt:
    """`sync_run`, saying why nothing ran when nothing did."""
    connection = connection_current()
    if connection is None or connection.status != XeroConnection.Status.ACTIVE:
        # changes keep accumulating in the outbox; they go once reconnected
        return SyncAttempt(SyncOutcome.NOT_CONNECTED, connection=connection)
    outbox_release_held(tenant_id=connection.tenant_id)
    now = timezone.now()
    if connection.paused_until and connection.paused_until > now:
        return SyncAttempt(SyncOutcome.PAUSED, connection=connection)
    if not force and not sync_is_due(now):
        return SyncAttempt(SyncOutcome.NOT_DUE, connection=connection)
    missing = tuple(setup_missing(setup_checklist(connection), set_up_before=_received_before(connection))) \
        if push else ()
    if missing:
        if not force or not pull:
            # Due only because changes wait to be pushed (or asked to push only): there is nothing to do.
            logger.debug("xero sync held back: %s", setup_missing_words(list(missing)))
            return SyncAttempt(SyncOutcome.NOT_SET_UP, connection=connection, missing=missing)
        # Pulling needs none of these settings and brings Xero's customers into the contact index the
        # first push matches against, so an asked-for run still pulls.
        push = False
    owner, lease = new_owner(), sync_lease_name(connection)
    if not lease_acquire(name=lease, owner=owner, seconds=LEASE_SECONDS):
        return SyncAttempt(SyncOutcome.BUSY, connection=connection)
    try:
        # Holding the lease, no other run is talking to this organisation: one still "running" is a killed
        # worker's, and says so now.
        SyncRun.objects.filter(tenant_id=connection.tenant_id, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.FAILED, finished_at=now, errors=[ABANDONED])
        keeper = LeaseKeeper(name=lease, owner=owner, seconds=LEASE_SECONDS, renew_every=RENEW_EVERY_SECONDS)
        run = SyncRun.objects.create(tenant_id=connection.tenant_id, trigger=trigger, started_at=now)
        try:
            _sync(run, connection, keeper, push=push, pull=pull, full=full, budget_seconds=budget_seconds,
                  progress=progress or no_progress)
        finally:
            if missing:
                # The pull's own status stands (Done: it went well; not Paused, which means Xero's limit or
                # the token key to the digest and the page); the run's first error says why nothing went.
                run.errors = [setup_missing_words(list(missing)), *run.errors]
            run.finished_at = timezone.now()
            run.save()
    finally:
        lease_release(name=lease, owner=owner)  # on every way out, also when building the run failed
    logger.info("xero sync %s (%s) %s: pushed %s, failed %s, %d calls", run.pk, trigger, run.status,
                wording.counted(run.pushed), wording.counted(run.failed), run.calls)
    if missing:
        logger.warning("xero sync %s pulled only: %s", run.pk, setup_missing_words(list(missing)))
        return SyncAttempt(SyncOutcome.NOT_SET_UP, run=run, connection=connection, missing=missing)
    return SyncAttempt(SyncOutcome.RAN, run=run, connection=connection)


def _received_before(connection: XeroConnection) -> bool:
    """The organisation has been set up once: a sale from the website reached it (the pull links contacts
    by itself, so only the push's own records tell)."""
    return XeroLink.objects.filter(tenant_id=connection.tenant_id, kind=RecordKind.SALE,
                                   xero_id__isnull=False).exists()


def _sync(run: SyncRun, connection: XeroConnection, keeper: LeaseKeeper, *, push: bool, pull: bool, full: bool,
          budget_seconds: float, progress: Progress) -> None:
    """The run itself; whatever happens, `run` ends in a final state with what went wrong in its errors."""
    gateway = None

    def progress_and_renew(what: str, done: int, total: int | None) -> None:
        progress(what, done, total)
        keeper.keep_alive()  # after each batch and page, besides before each call

    try:
        gateway = LeasedGateway(connection_gateway(connection), connection, keeper)
        # The run's pieces, built once: its settings, the contact index both stages consult, the stages.
        config = run_config_build(connection)
        reader = ChangesReader(tenant_id=connection.tenant_id, gateway=gateway, full=full,
                               progress=progress_and_renew)
        index = (ContactIndex.for_a_pulling_run if pull else ContactIndex.for_a_push_only_run)(reader=reader, run=run)
        if push:
            report = Push(connection=connection, gateway=gateway, config=config, contact_index=index,
                          cutoff_id=outbox_cutoff(), deadline=time.monotonic() + budget_seconds,
                          progress=progress_and_renew).run()
            run.pushed, run.failed, run.errors = dict(report.pushed), dict(report.failed), report.errors[:ERRORS_KEPT]
            run.work_remains = report.more_to_do
        if pull:
            pulled = Pull(connection=connection, gateway=gateway, config=config, contact_index=index,
                          reader=reader).run()
            run.pulled = dict(pulled.pulled)
            run.failed = dict(Counter(run.failed) + pulled.failed)
            run.errors = (run.errors + pulled.errors)[:ERRORS_KEPT]
        run.status = SyncRun.Status.DONE
        # A pause ends when its time has passed and a run has gone through.
        XeroConnection.objects.filter(pk=connection.pk, paused_until__lte=timezone.now()).update(
            paused_until=None, pause_reason="")
    except SyncPaused as paused:
        XeroConnection.objects.filter(pk=connection.pk).update(paused_until=paused.until, pause_reason=str(paused))
        run.status = SyncRun.Status.PAUSED
        # the shop's clock, named, as every time on the site (issue 18 item 9)
        run.errors = [*run.errors, f"{paused} Paused until {timezone.localtime(paused.until):%Y-%m-%d %H:%M %Z}."]
        logger.warning("xero sync paused for tenant %s until %s: %s", connection.tenant_id, paused.until, paused)
    except (XeroError, LeaseLost) as error:  # XeroAuthorizationError is one
        run.status = SyncRun.Status.FAILED
        run.errors = [*run.errors, str(error)]
        logger.warning("xero sync failed for tenant %s: %s", connection.tenant_id, error)
    except BaseException as error:
        # A bug, a database error, Celery's soft time limit: the run still ends, saying so, and the error
        # goes on to the logs (and Sentry) with its traceback.
        run.status = SyncRun.Status.FAILED
        run.errors = [*run.errors, f"The sync stopped on an unexpected error: {type(error).__name__}: {error}"]
        raise
    finally:
        if gateway is not None:
            run.calls = gateway.calls
            limits = gateway.gateway.limits
            XeroConnection.objects.filter(pk=connection.pk).update(
                minute_remaining=limits.minute_remaining, day_remaining=limits.day_remaining)
