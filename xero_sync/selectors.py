"""Read-side questions about the sync, for pages, health checks and commands."""

from .models import SyncRun


def last_successful_sync() -> SyncRun | None:
    return SyncRun.objects.filter(status=SyncRun.Status.DONE, finished_at__isnull=False).order_by(
        "-finished_at").first()
