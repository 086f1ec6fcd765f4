""""Check against Xero now": fetch one month's sales invoices and credit notes from Xero again before the
books check reads them, so the check is of Xero as it is this minute, not as of the last pull.

A page of 1,000 per call, asked for by date (`where Date >= DateTime(...)`), so a month costs
ceil(invoices/1000) + ceil(credit notes/1000) calls, and a contact or two the website has never seen. It
holds the organisation's lease like a sync run (one conversation with Xero at a time) and records itself as
a run, so its calls count where every other call counts. Nothing the refresh takes in is pushed back.
"""

import datetime

from django.utils import timezone

from ..errors import XeroError
from ..models import SyncRun, XeroConnection
from .books_check import month_after, month_start
from .connection import connection_current, connection_gateway
from .contact_index import ContactIndex
from .cursors import ChangesReader
from .leases import LeaseKeeper, lease_acquire, lease_release, new_owner
from .outbox import outbox_suppressed
from .paging import xero_pages
from .pull import Pull
from .pull.credit_notes import apply_credit_notes
from .pull.invoices import apply_invoices
from .run_config import run_config_build
from .sync import LEASE_SECONDS, RENEW_EVERY_SECONDS, LeasedGateway, sync_lease_name


class BooksRefreshRefused(Exception):
    """The refresh could not start: not connected, or another run is talking to Xero. Says which."""


def _dated_in(month: datetime.date) -> str:
    end = month_after(month)
    return (f"Date >= DateTime({month.year}, {month.month}, 1) && "
            f"Date < DateTime({end.year}, {end.month}, 1)")


def books_refresh_month(*, month: datetime.date) -> SyncRun:
    """Fetch the month's invoices and credit notes from Xero again; returns the run (its calls counted)."""
    month = month_start(month)
    connection = connection_current()
    if connection is None or connection.status != XeroConnection.Status.ACTIVE:
        raise BooksRefreshRefused("Not connected to Xero: connect on the Xero settings page, then check again.")
    owner, lease = new_owner(), sync_lease_name(connection)
    if not lease_acquire(name=lease, owner=owner, seconds=LEASE_SECONDS):
        raise BooksRefreshRefused("A sync is talking to Xero right now; check against Xero again in a minute.")
    run = SyncRun.objects.create(tenant_id=connection.tenant_id, trigger=SyncRun.Trigger.COMMAND,
                                 started_at=timezone.now())
    gateway = None
    try:
        keeper = LeaseKeeper(name=lease, owner=owner, seconds=LEASE_SECONDS, renew_every=RENEW_EVERY_SECONDS)
        gateway = LeasedGateway(connection_gateway(connection), connection, keeper)
        reader = ChangesReader(tenant_id=connection.tenant_id, gateway=gateway, full=False)
        pull = Pull(connection=connection, gateway=gateway, config=run_config_build(connection),
                    contact_index=ContactIndex.for_a_pulling_run(reader=reader, run=run), reader=reader)
        dated = _dated_in(month)
        with outbox_suppressed():
            for rows, _ in xero_pages(gateway, "get_invoices", "Invoices", where=f'Type=="ACCREC" && {dated}'):
                apply_invoices(pull.context, rows)
            for rows, _ in xero_pages(gateway, "get_credit_notes", "CreditNotes", unitdp=4,
                                      where=f'Type=="ACCRECCREDIT" && {dated}'):
                apply_credit_notes(pull.context, rows)
        run.pulled, run.failed = dict(pull.report.pulled), dict(pull.report.failed)
        run.errors = pull.report.errors[:200]
        run.status = SyncRun.Status.DONE
    except XeroError as error:
        run.status = SyncRun.Status.FAILED
        run.errors = [f"Books check of {month:%B %Y} could not read Xero: {error}"]
        raise BooksRefreshRefused(str(error)) from error
    finally:
        if gateway is not None:
            run.calls = gateway.calls
        if run.status == SyncRun.Status.RUNNING:
            run.status = SyncRun.Status.FAILED
        run.finished_at = timezone.now()
        run.save()
        lease_release(name=lease, owner=owner)
    return run
