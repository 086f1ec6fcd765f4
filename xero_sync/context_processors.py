from django.conf import settings

from .models import XeroConnection
from .services.connection import connection_current, connection_token_problem


def xero_status(request) -> dict:
    """What every admin page says about Xero: the emulator notice, a 'needs reconnecting' banner, and a
    stored token that XERO_TOKEN_KEY cannot read (a configuration error, not a lost connection)."""
    user = getattr(request, "user", None)
    if not (user and user.is_active and user.is_staff):
        return {}
    current = connection_current()
    needs_reconnect = current if current and current.status == XeroConnection.Status.NEEDS_RECONNECT else None
    token_problem = connection_token_problem(current)
    return {
        "xero_status": {
            "emulator": settings.XERO_USING_EMULATOR,
            "needs_reconnect": needs_reconnect,
            "token_problem": token_problem,
            "can_manage": user.has_perm("xero_sync.manage_xero"),
            "visible": settings.XERO_USING_EMULATOR or needs_reconnect is not None or bool(token_problem),
        }
    }
