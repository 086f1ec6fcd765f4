from django.conf import settings

from .models import XeroConnection


def xero_status(request) -> dict:
    """What every admin page says about Xero: the emulator notice and a 'needs reconnecting' banner."""
    user = getattr(request, "user", None)
    if not (user and user.is_active and user.is_staff):
        return {}
    needs_reconnect = XeroConnection.objects.filter(
        is_current=True, status=XeroConnection.Status.NEEDS_RECONNECT
    ).first()
    return {
        "xero_status": {
            "emulator": settings.XERO_USING_EMULATOR,
            "needs_reconnect": needs_reconnect,
            "can_manage": user.has_perm("xero_sync.manage_xero"),
            "visible": settings.XERO_USING_EMULATOR or needs_reconnect is not None,
        }
    }
