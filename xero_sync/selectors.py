"""Read-side questions about the sync, for pages, health checks and commands."""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from ecommerce.models import Receipt, Refund, Sale

from .models import PaymentMethodConfig, RecordKind, SyncRun, XeroConnection, XeroLink
from .services import configuration
from .services.configuration import DEMO_REFERENCE_PREFIX

# How services.connection begins the reason of a pause for an unreadable token key (TOKEN_KEY_PROBLEM).
TOKEN_KEY_PROBLEM_WORDS = "XERO_TOKEN_KEY cannot read the stored Xero token"


def last_successful_sync() -> SyncRun | None:
    return SyncRun.objects.filter(status=SyncRun.Status.DONE, finished_at__isnull=False).order_by(
        "-finished_at").first()


def daily_series(*, days: int = 30, today: datetime.date | None = None) -> dict[str, list[tuple[datetime.date, int]]]:
    """Records synced (pushed + pulled) and records failed per day over the last `days` days, the shop's
    days (SHOP_TIME_ZONE): a run at 9 am in Auckland counts on that day, not on UTC's day before."""
    today = today or timezone.localdate()
    start = today - datetime.timedelta(days=days - 1)
    synced, failed = defaultdict(int), defaultdict(int)
    # From the first day's midnight in the shop's zone, as a moment: `started_at >= ...` reads the runs of
    # those days from the started_at index (syncrun_newest_first); `started_at__date >= ...` converted every
    # run's time to a local date first, a Seq Scan of the whole history (EXPLAIN at a year of runs).
    since = timezone.make_aware(datetime.datetime.combine(start, datetime.time.min))
    for started, pushed, pulled, failures in SyncRun.objects.filter(started_at__gte=since).values_list(
            "started_at", "pushed", "pulled", "failed"):
        day = timezone.localdate(started)
        synced[day] += sum(pushed.values()) + sum(pulled.values())
        failed[day] += sum(failures.values())
    dates = [start + datetime.timedelta(days=offset) for offset in range(days)]
    return {"synced": [(day, synced[day]) for day in dates], "failed": [(day, failed[day]) for day in dates]}


def calls_last_day() -> int:
    """Calls in the last 24 hours: Xero's day resets at a time of its own for each organisation
    (docs/xero-api.md), so no midnight of ours is the right one."""
    since = timezone.now() - datetime.timedelta(hours=24)
    return SyncRun.objects.filter(started_at__gte=since).aggregate(total=Sum("calls"))["total"] or 0


# --- Who goes to Xero ------------------------------------------------------------------------------------
# One answer for the push (which records it sends) and the admin's Xero column (which records it calls
# "Not for Xero yet"), so the two never disagree.

def contacts_for_xero(tenant_id) -> Q:
    """Contacts with a sale for Xero, or already in Xero (their sale may since have been cancelled, but
    their edits still belong in Xero)."""
    going = Sale.objects.filter(sales_for_xero(), contact=OuterRef("pk"))
    in_xero = XeroLink.objects.filter(tenant_id=tenant_id, kind=RecordKind.CONTACT, local_id=OuterRef("pk"),
                                      xero_id__isnull=False)
    return Q(Exists(going)) | Q(Exists(in_xero))


def sales_for_xero() -> Q:
    """Confirmed sales, and cancelled ones whose money went through Xero (a receipt, or money paid back, by
    a method that pushes); drafts stay on the website until confirmed, and so does the demo shop's data
    while the organisation is a real one (configuration.demo_data_withheld).

    A cancelled sale whose money went through Xero goes even if it was cancelled before it reached Xero:
    that method's account in Xero is reconciled against its statement, which shows the money coming in and
    going back, so Xero needs the invoice, its payment, the credit note and the refund a bookkeeper would
    enter by hand. One cancelled before it reached Xero with no such money sends nothing (its cash went in
    and out on the website only; see refunds_for_xero). One that reached Xero goes whatever its money
    (sales_in_or_for_xero)."""
    received = Receipt.objects.filter(receipts_for_xero(), sale=OuterRef("pk"))
    paid_back = Refund.objects.filter(_method_pushes(), amount_refunded__gt=0, sale=OuterRef("pk"))
    going = Q(status=Sale.Status.CONFIRMED) | Q(status=Sale.Status.CANCELLED) & (
        Q(Exists(received)) | Q(Exists(paid_back)))
    return going & ~configuration.demo_sales() if configuration.demo_data_withheld() else going


def sales_in_or_for_xero(tenant_id) -> Q:
    """The sales whose invoice Xero holds or gets: those for Xero (sales_for_xero), and cancelled ones that
    reached this organisation (their invoice is voided, or kept when money or credit touched it). The push
    sends these, and their refunds go with them (refunds_for_xero)."""
    reached = XeroLink.objects.filter(tenant_id=tenant_id, kind=RecordKind.SALE, local_id=OuterRef("pk"),
                                      xero_id__isnull=False)
    return sales_for_xero() | Q(status=Sale.Status.CANCELLED) & Q(Exists(reached))


def _method_pushes() -> Q:
    """The record's payment method pushes to a Xero account (as pushing_payment_accounts reads it)."""
    return Q(payment_method__xero_config__direction=PaymentMethodConfig.Direction.PUSH) & ~Q(
        payment_method__xero_config__xero_account_code="")


def receipts_for_xero() -> Q:
    """Receipts whose payment method pushes to a Xero account; the others never leave the website, nor do
    the demo sales' receipts while those stay on the website."""
    pushed = _method_pushes()
    if configuration.demo_data_withheld():
        pushed &= ~Q(sale__reference__startswith=DEMO_REFERENCE_PREFIX)
    return pushed


def refunds_for_xero(tenant_id) -> Q:
    """Refunds of the sales whose invoice Xero holds or gets (sales_in_or_for_xero): a credit note is made
    against its sale's invoice. A refund of a sale cancelled before any of it reached Xero, with no money
    through Xero, is not for Xero: nothing of that sale goes, so its credit note would wait for an invoice
    that never comes. Nor are the demo sales' while those stay on the website.

    `tenant_id`: the organisation whose links say what reached Xero (None when not connected: nothing did)."""
    going = Q(Exists(Sale.objects.filter(sales_in_or_for_xero(tenant_id), pk=OuterRef("sale_id"))))
    if configuration.demo_data_withheld():
        going &= ~Q(sale__reference__startswith=DEMO_REFERENCE_PREFIX)
    return going


def pushing_payment_accounts() -> dict[int, str]:
    """Payment method id -> the Xero account its receipts are paid into, for methods that push."""
    return dict(PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PUSH)
                .exclude(xero_account_code="").values_list("payment_method_id", "xero_account_code"))


# --- Where the sync stands -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncPause:
    """The organisation's pause as it stands now. `active`: runs wait until `until`. Not active: its time
    has passed and no run has gone through since; the next run resumes the sync (and clears it)."""

    until: datetime.datetime
    reason: str
    active: bool
    token_key: bool  # caused by an unreadable token key (a configuration error), not by Xero's limit

    @property
    def cause(self) -> str:
        return "an unreadable token key (XERO_TOKEN_KEY)" if self.token_key else "Xero's call limit"


def sync_pause(connection: XeroConnection | None, now: datetime.datetime | None = None) -> SyncPause | None:
    if connection is None or connection.paused_until is None:
        return None
    return SyncPause(until=connection.paused_until, reason=connection.pause_reason,
                     active=connection.paused_until > (now or timezone.now()),
                     token_key=is_token_key_pause(connection.pause_reason))


def is_token_key_pause(reason: str) -> bool:
    return reason.startswith(TOKEN_KEY_PROBLEM_WORDS)


def sync_pause_words(pause: SyncPause | None) -> str:
    """One sentence, the same on the settings page and in `xero_sync status`."""
    if pause is None:
        return ""
    if pause.active:
        return f"Paused by {pause.cause} until {_shop_time(pause.until)}: {pause.reason}"
    return f"The pause ({pause.cause}) ended at {_shop_time(pause.until)}; the next run resumes the sync."


def _shop_time(moment: datetime.datetime) -> str:
    """In the shop's time zone, named, as every time on the site is (issue 18 item 9)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"
