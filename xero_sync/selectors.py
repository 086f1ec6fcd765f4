"""Read-side questions about the sync, for pages, health checks and commands."""

import datetime
from collections import defaultdict

from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from ecommerce.models import Sale

from .models import PaymentMethodConfig, RecordKind, SyncRun, XeroLink


def last_successful_sync() -> SyncRun | None:
    return SyncRun.objects.filter(status=SyncRun.Status.DONE, finished_at__isnull=False).order_by(
        "-finished_at").first()


def daily_series(*, days: int = 30, today: datetime.date | None = None) -> dict[str, list[tuple[datetime.date, int]]]:
    """Records synced (pushed + pulled) and records failed per day over the last `days` days, the shop's
    days (SHOP_TIME_ZONE): a run at 9 am in Auckland counts on that day, not on UTC's day before."""
    today = today or timezone.localdate()
    start = today - datetime.timedelta(days=days - 1)
    synced, failed = defaultdict(int), defaultdict(int)
    for started, pushed, pulled, failures in SyncRun.objects.filter(started_at__date__gte=start).values_list(
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
    """Contacts with a confirmed sale, or already in Xero (their sale may since have been cancelled, but
    their edits still belong in Xero)."""
    confirmed = Sale.objects.filter(contact=OuterRef("pk"), status=Sale.Status.CONFIRMED)
    in_xero = XeroLink.objects.filter(tenant_id=tenant_id, kind=RecordKind.CONTACT, local_id=OuterRef("pk"),
                                      xero_id__isnull=False)
    return Q(Exists(confirmed)) | Q(Exists(in_xero))


def sales_for_xero() -> Q:
    """Confirmed sales; drafts stay on the website until confirmed."""
    return Q(status=Sale.Status.CONFIRMED)


def receipts_for_xero() -> Q:
    """Receipts whose payment method pushes to a Xero account; the others never leave the website."""
    return Q(payment_method__xero_config__direction=PaymentMethodConfig.Direction.PUSH) & ~Q(
        payment_method__xero_config__xero_account_code="")


def pushing_payment_accounts() -> dict[int, str]:
    """Payment method id -> the Xero account its receipts are paid into, for methods that push."""
    return dict(PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PUSH)
                .exclude(xero_account_code="").values_list("payment_method_id", "xero_account_code"))
