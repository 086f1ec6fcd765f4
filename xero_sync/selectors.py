"""Read-side questions about the sync, for pages, health checks and commands."""

import datetime
from collections import defaultdict

from django.db.models import Sum
from django.utils import timezone

from .models import SyncRun


def last_successful_sync() -> SyncRun | None:
    return SyncRun.objects.filter(status=SyncRun.Status.DONE, finished_at__isnull=False).order_by(
        "-finished_at").first()


def daily_series(*, days: int = 30, today: datetime.date | None = None) -> dict[str, list[tuple[datetime.date, int]]]:
    """Records synced (pushed + pulled) and records failed per day over the last `days` days (UTC)."""
    today = today or timezone.now().date()
    start = today - datetime.timedelta(days=days - 1)
    synced, failed = defaultdict(int), defaultdict(int)
    for started, pushed, pulled, failures in SyncRun.objects.filter(started_at__date__gte=start).values_list(
            "started_at", "pushed", "pulled", "failed"):
        day = started.date()
        synced[day] += sum(pushed.values()) + sum(pulled.values())
        failed[day] += sum(failures.values())
    dates = [start + datetime.timedelta(days=offset) for offset in range(days)]
    return {"synced": [(day, synced[day]) for day in dates], "failed": [(day, failed[day]) for day in dates]}


def calls_today() -> int:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return SyncRun.objects.filter(started_at__gte=midnight).aggregate(total=Sum("calls"))["total"] or 0
