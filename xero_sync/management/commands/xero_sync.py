"""`python manage.py xero_sync configure|connect|status|run|books-check`: the settings page, for operators
who script."""

import argparse
import datetime
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ecommerce.models import PaymentMethod
from xero_sync import wording
from xero_sync.errors import XeroError
from xero_sync.models import OAuthAttempt, PaymentMethodConfig, SyncRun, TaxMapping
from xero_sync.selectors import sync_pause, sync_pause_words
from xero_sync.services import configuration
from xero_sync.services.books_check import books_check_store, months_back
from xero_sync.services.books_refresh import BooksRefreshRefused, books_refresh_month
from xero_sync.services.connection import connect_start, connection_current
from xero_sync.services.links import links_with_problems
from xero_sync.services.outbox import outbox_backlog
from xero_sync.services.schedule import sync_lease_held
from xero_sync.services.sync import SyncOutcome, sync_attempt

# `xero_sync run` exits with one of these, for cron and scripts (2 is argparse's, for bad arguments).
EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_PAUSED = 3
EXIT_BUSY = 4
EXIT_NOT_CONNECTED = 5
EXIT_NOT_SET_UP = 6
RUN_EPILOG = (
    "exit codes: 0 done (the run went through; records Xero refused are listed and shown on the settings "
    "page); 1 failed (the run stopped on an error, printed); 2 bad arguments; 3 paused (Xero's daily limit "
    "or an unreadable token key: nothing ran, or the run stopped; the time it ends is printed); 4 busy "
    "(another worker is syncing with this organisation: try again shortly); 5 not connected or the "
    "connection needs reconnecting; 6 not set up (the Xero settings are incomplete, what is missing is printed: "
    "nothing was pushed, the pull ran unless --push-only; pending changes are kept).")


def _month(value: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month: give it as YYYY-MM, e.g. 2026-03") from None


def _on_off(value: str) -> bool:
    if value.lower() in {"on", "true", "yes", "1"}:
        return True
    if value.lower() in {"off", "false", "no", "0"}:
        return False
    raise ValueError(value)


def _tax_pair(value: str) -> tuple[str, str]:
    code, separator, tax_type = value.partition("=")
    if not separator or not code:
        raise ValueError(value)
    return code, tax_type


class ProgressBar:
    """`what  [#####-----] 1,200/5,000  ETA 0:02:10` redrawn in place; counts alone when the total is unknown."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.started: dict[str, float] = {}

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if done == 0 or what not in self.started:
            self.started[what] = time.monotonic()  # the clock starts before the first batch or page
        started = self.started[what]
        elapsed = max(time.monotonic() - started, 1e-6)
        if total:
            filled = int(self.WIDTH * done / total)
            remaining = (total - done) * elapsed / max(done, 1)
            eta = time.strftime("%H:%M:%S", time.gmtime(remaining))
            line = f"{what:<18} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done:,}/{total:,}  ETA {eta}"
        else:
            line = f"{what:<18} {done:,} so far ({done / elapsed:,.0f}/s)"
        self.stream.write(f"\r{line}", ending="\n" if total and done >= total else "")
        self.stream.flush()


class Command(BaseCommand):
    help = "Configure and inspect the Xero connection and sync from the command line."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True,
                                         metavar="{configure,connect,status,run,books-check}")

        configure = commands.add_parser("configure", help="Set the sync settings (same checks as the page).")
        configure.add_argument("--auto-sync", type=_on_off, metavar="on|off")
        configure.add_argument("--quiet-period", type=int, dest="debounce_seconds", metavar="SECONDS")
        configure.add_argument("--max-wait", type=int, dest="max_wait_seconds", metavar="SECONDS")
        configure.add_argument("--sales-account", dest="default_sales_account_code", metavar="CODE")
        configure.add_argument("--shipping-account", dest="shipping_account_code", metavar="CODE")
        configure.add_argument("--payment-method", metavar="CODE", help="The payment method to configure.")
        configure.add_argument("--direction", choices=PaymentMethodConfig.Direction.values)
        configure.add_argument("--account", default="", metavar="CODE", help="Its Xero bank/clearing account.")
        configure.add_argument("--tax", type=_tax_pair, action="append", default=[], metavar="CODE=TAXTYPE",
                               help="Map a website tax code to a Xero tax type (repeatable; CODE= removes).")
        configure.add_argument("--refresh-chart", action="store_true",
                               help="Fetch the organisation's accounts and tax rates first.")

        connect = commands.add_parser("connect", help="Print the URL to connect and wait for the callback.")
        connect.add_argument("--wait", type=int, default=600, metavar="SECONDS")
        connect.add_argument("--reconnect", action="store_true", help="Connect again even if connected.")

        commands.add_parser("status", help="Print the connection, settings, backlog, last runs and errors.")

        run = commands.add_parser("run", help="Sync now, ignoring the quiet period, and print what it did.",
                                  description="Sync now, ignoring the quiet period, and print what it did.",
                                  epilog=RUN_EPILOG)
        only = run.add_mutually_exclusive_group()
        only.add_argument("--push-only", action="store_true")
        only.add_argument("--pull-only", action="store_true")
        run.add_argument("--full", action="store_true", help="Pull everything, not only what changed.")

        books = commands.add_parser(
            "books-check", help="Print the books check: the website's ledger against Xero's, month by month.",
            description="Print, per month (the shop's) and currency, the website's sales, payments and refunds "
                        "beside Xero's, and every difference with its record.",
            epilog="exit codes: 0 everything agrees (or only explained differences: waiting for a run, locked "
                   "in Xero, conflicts already shown); 1 an unexplained difference exists (listed); 2 bad "
                   "arguments; 5 not connected. For cron: a non-zero exit is a difference to look at.")
        books.add_argument("--month", type=_month, metavar="YYYY-MM",
                           help="Check this month and list its differences (default: the last 12 months).")
        books.add_argument("--fresh", action="store_true",
                           help="Fetch the month's invoices and credit notes from Xero first (needs --month).")

    def handle(self, *args, action: str, **options):
        return getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _books_check(self, *, month, fresh: bool, **options):
        connection = connection_current()
        if connection is None:
            raise CommandError("Not connected to Xero: there are no Xero books to check against.",
                               returncode=EXIT_NOT_CONNECTED)
        if fresh and month is None:
            raise CommandError("--fresh needs --month: Xero is read again one month at a time.", returncode=2)
        if fresh:
            try:
                run = books_refresh_month(month=month)
            except BooksRefreshRefused as refused:
                raise CommandError(str(refused), returncode=EXIT_BUSY) from refused
            self.stdout.write(f"Fetched {month:%B %Y} from Xero again ({run.calls} calls).")
        months = [month] if month else months_back(12)
        checks = books_check_store(tenant_id=connection.tenant_id, months=months)
        self.stdout.write(f"{'Month':<10} {'Cur':<4} {'Sales':>6} {'Invoiced':>14} {'Paid':>14} {'Refunded':>12} "
                          f"{'In Xero':>8} {'Differences'}")
        shown = {check.month for check in checks}
        for check in checks:
            verdict = "agrees" if check.agrees else f"{len(check.unexplained)} to look at"
            if len(check.differences) > len(check.unexplained):
                verdict += f" ({len(check.differences) - len(check.unexplained)} explained)"
            self.stdout.write(f"{check.month:%Y-%m}    {check.currency:<4} {check.sales:>6} {check.invoiced:>14} "
                              f"{check.paid:>14} {check.refunded:>12} {check.in_xero:>8} {verdict}")
        for empty in sorted(set(months) - shown, reverse=True):
            self.stdout.write(f"{empty:%Y-%m}    {'':<4} {0:>6} {'':>14} {'':>14} {'':>12} {0:>8} agrees (no sales)")
        unexplained = [difference for check in checks for difference in check.unexplained]
        listed = [difference for check in checks for difference in check.differences] if month else unexplained
        for difference in listed:
            self.stdout.write(f"  {'-' if difference.explained else '!'} {difference.words}")
        if unexplained:
            raise CommandError(f"{len(unexplained)} unexplained difference(s) between the website and Xero.",
                               returncode=EXIT_FAILED)

    def _configure(self, *, refresh_chart: bool, payment_method: str | None, direction: str | None,
                   account: str, tax: list[tuple[str, str]], **options):
        try:
            if refresh_chart:
                connection = connection_current()
                if connection is None:
                    raise CommandError("Not connected to Xero: run `manage.py xero_sync connect` first.")
                configuration.chart_refresh(connection=connection)
            fields = {key: options[key] for key in ("auto_sync", "debounce_seconds", "max_wait_seconds",
                                                    "default_sales_account_code", "shipping_account_code")}
            if any(value is not None for value in fields.values()):
                configuration.sync_settings_update(**fields)
            if payment_method or direction:
                if not (payment_method and direction):
                    raise CommandError("--payment-method and --direction go together.")
                method = PaymentMethod.objects.filter(code=payment_method).first()
                if method is None:
                    known = ", ".join(PaymentMethod.objects.values_list("code", flat=True)) or "none"
                    raise CommandError(f"No payment method with code {payment_method!r}. Known: {known}.")
                configuration.payment_method_configure(payment_method=method, direction=direction,
                                                       account_code=account)
            for tax_code, xero_tax_type in tax:
                configuration.tax_mapping_set(tax_code=tax_code, xero_tax_type=xero_tax_type)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        except XeroError as error:
            raise CommandError(f"Xero: {error}") from error
        self._status()

    def _connect(self, *, wait: int, reconnect: bool, **options):
        connection = connection_current()
        if connection and not reconnect:
            self.stdout.write(f"Connected to {connection.tenant_name} ({connection.get_status_display()}). "
                              "Use --reconnect to connect again.")
            return
        url = connect_start()
        attempt = OAuthAttempt.objects.latest("pk")
        self.stdout.write("Open this URL in a browser where you are logged in to the shop's admin as staff:\n")
        self.stdout.write(f"  {url}\n")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            attempt.refresh_from_db()
            if attempt.error:
                raise CommandError(attempt.error)
            if attempt.completed_connection:
                self.stdout.write(self.style.SUCCESS(f"Connected to {attempt.completed_connection.tenant_name}."))
                return
            if attempt.pending_tenants:
                self.stdout.write(f"Choose the organisation in the browser (/xero/choose/{attempt.pk}/).")
            time.sleep(1)
        raise CommandError(f"No callback from Xero within {wait} seconds.")

    def _run(self, *, push_only: bool, pull_only: bool, full: bool, **options):
        bar = ProgressBar(self.stderr)
        attempt = sync_attempt(trigger=SyncRun.Trigger.COMMAND, force=True, push=not pull_only,
                               pull=not push_only, full=full, progress=bar)
        if bar.started:
            self.stderr.write("")  # end the last redrawn line
        connection, run = attempt.connection, attempt.run
        if attempt.outcome == SyncOutcome.NOT_CONNECTED:
            if connection is None:
                raise CommandError("Not connected to Xero: run `manage.py xero_sync connect` first.",
                                   returncode=EXIT_NOT_CONNECTED)
            raise CommandError(f"The Xero connection {connection.get_status_display().lower()}: "
                               f"{connection.status_reason} Reconnect first; pending changes are kept.",
                               returncode=EXIT_NOT_CONNECTED)
        if attempt.outcome == SyncOutcome.PAUSED:
            raise CommandError(sync_pause_words(sync_pause(connection)), returncode=EXIT_PAUSED)
        if attempt.outcome == SyncOutcome.BUSY:
            raise CommandError("Another worker is syncing with this organisation right now; try again shortly.",
                               returncode=EXIT_BUSY)
        if attempt.outcome == SyncOutcome.NOT_SET_UP and run is None:
            raise CommandError(configuration.setup_missing_words(list(attempt.missing)), returncode=EXIT_NOT_SET_UP)
        self.stdout.write(self._describe(run))
        for error in run.errors:
            self.stdout.write(f"  ! {error}")
        if run.status == SyncRun.Status.FAILED:
            raise CommandError("The sync failed; see the errors above.", returncode=EXIT_FAILED)
        if run.status == SyncRun.Status.PAUSED:
            connection.refresh_from_db()
            raise CommandError(sync_pause_words(sync_pause(connection)), returncode=EXIT_PAUSED)
        if attempt.outcome == SyncOutcome.NOT_SET_UP:
            raise CommandError(configuration.setup_missing_words(list(attempt.missing)), returncode=EXIT_NOT_SET_UP)
        if run.work_remains:
            self.stdout.write("The time budget ended this run with records still to send: run it again.")

    @staticmethod
    def _describe(run: SyncRun) -> str:
        took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
        return (f"Sync {run.pk} ({run.get_trigger_display()}, {run.get_status_display()}): pushed {wording.counted(run.pushed)}; "
                f"pulled {wording.counted(run.pulled)}; failed {wording.counted(run.failed)}; {run.calls} Xero calls in {took:.1f} s")

    def _status(self, **options):
        connection = connection_current()
        current = configuration.sync_settings()
        if connection:
            self.stdout.write(f"Connection: {connection.tenant_name} [{connection.tenant_id}] "
                              f"{connection.get_status_display()}"
                              + (f" — {connection.status_reason}" if connection.status_reason else ""))
        else:
            self.stdout.write("Connection: not connected")
        self.stdout.write(
            f"Auto-sync: {'on' if current.auto_sync else 'off'}; quiet period {current.debounce_seconds}s, "
            f"longest wait {current.max_wait_seconds}s")
        self.stdout.write(f"Sales account: {current.default_sales_account_code or '-'}; "
                          f"shipping account: {current.shipping_account_code or '-'}")
        for config in PaymentMethodConfig.objects.select_related("payment_method").order_by("payment_method__code"):
            self.stdout.write(f"Payment method {config.payment_method.code}: {config.direction}"
                              + (f" via {config.xero_account_code}" if config.xero_account_code else ""))
        for mapping in TaxMapping.objects.all():
            self.stdout.write(f"Tax {mapping.tax_code} -> {mapping.xero_tax_type}")
        for step in configuration.setup_checklist(connection):
            self.stdout.write(f"Setup: [{'x' if step.done else ' '}] {step.label}"
                              + (f" — {step.todo}" if step.todo else ""))
        pause = sync_pause(connection)
        if pause is not None:
            self.stdout.write(f"Pause: {sync_pause_words(pause)}")
        if connection and sync_lease_held():
            self.stdout.write("Running: a worker is syncing with this organisation now")
        self.stdout.write(f"Backlog: {outbox_backlog()} record(s) waiting to be pushed")
        for run in SyncRun.objects.all()[:5]:
            self.stdout.write(f"Last runs: {self._describe(run)}")
        problems = links_with_problems()
        self.stdout.write(f"Current errors: {problems.count()}")
        for link in problems[:20]:
            self.stdout.write(f"  {link.kind} {link.local_id} [{link.get_state_display()}]: {link.last_error}")
