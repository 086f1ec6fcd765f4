"""/healthz for load balancers and monitors: the database, the broker, and how long ago Xero last synced.

200 when all is well, 503 when something is not; the body says which, and never anything secret.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from xero_sync.selectors import last_successful_sync


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any failure to reach the database is "unhealthy", whatever its kind
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # likewise for the broker
        return False


@never_cache
@require_GET
def healthz(request):
    database, broker = _database_ok(), _broker_ok()
    age = _sync_age_seconds() if database else None
    sync_ok = age is None or age <= settings.HEALTH_MAX_SYNC_AGE_SECONDS
    healthy = database and broker and sync_ok
    return JsonResponse(
        {
            "status": "ok" if healthy else "unhealthy",
            "database": "ok" if database else "unreachable",
            "broker": "ok" if broker else "unreachable",
            "xero_last_sync_age_seconds": None if age is None else int(age),
            "xero_sync": "ok" if sync_ok else "stale",
        },
        status=200 if healthy else 503,
    )


def _sync_age_seconds() -> float | None:
    """Seconds since the last successful sync (or since connecting, before the first one); None when not
    connected to Xero, which is not a fault of the site."""
    from xero_sync.services.connection import connection_current

    connection = connection_current()
    if connection is None:
        return None
    sync = last_successful_sync()
    since = max(filter(None, [sync.finished_at if sync else None, connection.connected_at]))
    return (timezone.now() - since).total_seconds()
