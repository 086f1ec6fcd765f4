"""System checks: a half-configured Xero setup is reported at start-up, not at the first sync."""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from .crypto import token_cipher

XERO_URL_SETTINGS = ("XERO_EMULATOR_URL", "XERO_AUTHORIZE_URL", "XERO_TOKEN_URL", "XERO_REVOKE_URL",
                     "XERO_CONNECTIONS_URL", "XERO_API_URL")


def _loopback(hostname: str | None) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname or "").is_loopback
    except ValueError:
        return False


@register()
def xero_configuration(app_configs, **kwargs):
    problems = []
    explicit_id = bool(settings.XERO_CLIENT_ID) and settings.XERO_CLIENT_ID != "emulator-client"
    explicit_secret = bool(settings.XERO_CLIENT_SECRET) and settings.XERO_CLIENT_SECRET != "emulator-secret"
    if explicit_id and not explicit_secret:
        problems.append(Error("XERO_CLIENT_ID is set but XERO_CLIENT_SECRET is not.",
                              hint="Copy both from your app at developer.xero.com.", id="xero_sync.E001"))
    if explicit_secret and not explicit_id:
        problems.append(Error("XERO_CLIENT_SECRET is set but XERO_CLIENT_ID is not.",
                              hint="Copy both from your app at developer.xero.com.", id="xero_sync.E002"))
    redirect = urlsplit(settings.XERO_REDIRECT_URI)
    if redirect.path.rstrip("/") != "/xero/callback":
        problems.append(Error(
            f"XERO_REDIRECT_URI must end in /xero/callback/ (it is {settings.XERO_REDIRECT_URI!r}).",
            id="xero_sync.E003"))
    if not settings.XERO_USING_EMULATOR and redirect.scheme != "https" and not _loopback(redirect.hostname):
        problems.append(Error("Xero accepts only https redirect URIs (except localhost).",
                              hint="Set XERO_REDIRECT_URI to https://your-host/xero/callback/.", id="xero_sync.E004"))
    if not settings.XERO_USING_EMULATOR and _loopback(redirect.hostname):
        # A real Xero app sending its codes back to this machine: right for a local try, wrong for a site.
        # It is also what XERO_REDIRECT_URI defaults to, so a forgotten setting shows up here.
        problems.append((Warning if settings.DEBUG else Error)(
            f"XERO_REDIRECT_URI points a real Xero app at this machine ({settings.XERO_REDIRECT_URI}).",
            hint="Set XERO_REDIRECT_URI to https://your-host/xero/callback/ (loopback is for a local try "
                 "with DEBUG on only).", id="xero_sync.E008"))
    for name in XERO_URL_SETTINGS:
        url = urlsplit(getattr(settings, name, "") or "")
        if url.scheme == "http" and not _loopback(url.hostname):
            problems.append(Error(
                f"{name} is plain http to {url.hostname}: tokens, codes and the client secret would cross the "
                "network unencrypted.", hint="Use https (plain http only to 127.0.0.1 or localhost).",
                id="xero_sync.E009"))
    if "offline_access" not in settings.XERO_SCOPES:
        problems.append(Error("XERO_SCOPES lacks offline_access: the connection would die after 30 minutes.",
                              id="xero_sync.E005"))
    if "accounting.transactions" in settings.XERO_SCOPES:
        problems.append(Warning(
            "XERO_SCOPES asks for accounting.transactions, which Xero refuses for apps created since March "
            "2026.", hint="Use accounting.invoices and accounting.payments.", id="xero_sync.W001"))
    try:
        token_cipher()
    except (ValueError, TypeError, ImproperlyConfigured) as error:
        problems.append(Error(f"XERO_TOKEN_KEY is not a valid Fernet key: {error}", id="xero_sync.E006"))
    if not settings.DEBUG and not settings.XERO_USING_EMULATOR and not settings.XERO_TOKEN_KEYS:
        problems.append(Error("XERO_TOKEN_KEY must be set in production to encrypt the stored Xero tokens.",
                              id="xero_sync.E007"))
    return problems


@register()
def xero_stored_token(app_configs, **kwargs):
    """A stored token this process's XERO_TOKEN_KEY cannot read (a wrong key, or a rotation that dropped
    the old one). Before migrations there is nothing to read, and nothing to say."""
    from .services.connection import connection_current, connection_token_problem

    try:
        problem = connection_token_problem(connection_current(), this_process_only=True)
    except DatabaseError:
        return []
    if not problem:
        return []
    return [Error(f"The current Xero connection's stored token cannot be read: {problem}",
                  hint="Set XERO_TOKEN_KEY to the key it was stored with (XERO_TOKEN_KEY=new,old keeps "
                       "both during a rotation). The connection is kept; syncing resumes once the key is right.",
                  id="xero_sync.E010")]
