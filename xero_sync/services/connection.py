"""Connecting to a Xero organisation and keeping its tokens fresh.

Tokens rotate: every refresh returns a new refresh token and retires the old one (after a 30-minute grace
period). Two workers refreshing the same connection at once would each rotate it and one would end with a
dead token, so refreshing happens under a lease, and the new pair is stored before anyone uses it.
No database transaction is open during any HTTP call here.
"""

import base64
import datetime
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from .. import client
from ..crypto import TokenDecryptError, decrypt_token, encrypt_token
from ..errors import XeroAuthorizationError, XeroError, XeroUnavailable
from ..models import OAuthAttempt, XeroConnection
from ..ratelimit import SyncPaused
from .attempts import attempt_expired, attempt_started_by, attempts_purge
from .leases import lease_acquire, lease_release, new_owner

logger = logging.getLogger(__name__)

# Refresh this long before the access token expires, well ahead of xero-python's own 60 s buffer.
REFRESH_MARGIN_SECONDS = 300
# From Connect to Xero's callback (the organisation choice may take longer: attempts.py).
ATTEMPT_LIFETIME_SECONDS = 15 * 60
POLL_SECONDS = 0.1


# A stored token this process cannot read pauses syncing this long, then it simply tries again: once every
# process has the right XERO_TOKEN_KEY, the next run goes through with the same connection.
TOKEN_KEY_PAUSE_SECONDS = 60
TOKEN_KEY_PROBLEM = ("XERO_TOKEN_KEY cannot read the stored Xero token (a configuration error: check the key "
                     "in every process, web, worker and beat; the connection itself is kept)")


class TokenKeyProblem(SyncPaused, XeroError):
    """The configured XERO_TOKEN_KEY cannot read the stored token. Not a lost connection: the sync pauses
    (as it does for Xero's daily limit) and resumes by itself once the key is right; pages that call Xero
    show it as any other Xero error."""

    def __init__(self, reason: str):
        super().__init__(timezone.now() + datetime.timedelta(seconds=TOKEN_KEY_PAUSE_SECONDS), reason)


class ConnectError(Exception):
    """A connect attempt that cannot go on; the message is for staff."""


def connection_current() -> XeroConnection | None:
    return XeroConnection.objects.filter(is_current=True).first()


# --- Connecting --------------------------------------------------------------------------------------


def connect_start(*, user=None) -> str:
    """Begin a consent: remember a single-use state and PKCE verifier, return Xero's authorize URL."""
    attempts_purge()
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    OAuthAttempt.objects.create(state=state, code_verifier=verifier, started_by=user)
    return client.authorization_url(state=state, code_challenge=challenge)


def connect_complete(*, state: str, code: str, error: str = "", user=None) -> OAuthAttempt:
    """Handle Xero's redirect back: spend the state, exchange the code, find the organisations.

    With one organisation the connection is made; with several, the attempt keeps the (encrypted) token
    and the list until the same user chooses one (connect_choose_tenant).
    """
    now = timezone.now()
    attempt = OAuthAttempt.objects.filter(
        state=state, consumed_at__isnull=True,
        started_at__gte=now - datetime.timedelta(seconds=ATTEMPT_LIFETIME_SECONDS),
    ).first() if state else None
    if attempt is None:
        raise ConnectError("This Xero sign-in is unknown, expired or already used. Start again with Connect.")
    # Before spending the state: someone else's callback must not burn the sign-in of the user who started it.
    if not attempt_started_by(attempt, user):
        raise ConnectError("This Xero sign-in was started by another user. Start again with Connect.")
    # Spend the state before any call to Xero: of two racing callbacks, only one goes on.
    if not OAuthAttempt.objects.filter(pk=attempt.pk, consumed_at__isnull=True).update(consumed_at=now):
        raise ConnectError("This Xero sign-in is unknown, expired or already used. Start again with Connect.")
    attempt.consumed_at = now
    if error or not code:
        attempt.error = f"Xero did not grant access: {error or 'no code returned'}."
        attempt.save(update_fields=["error"])
        raise ConnectError(attempt.error)
    try:
        token = client.exchange_code(code=code, code_verifier=attempt.code_verifier)
        tenants = client.list_connections(access_token=token["access_token"])
    except XeroError as failure:
        attempt.error = f"Connecting failed: {failure}"
        attempt.save(update_fields=["error"])
        raise ConnectError(attempt.error) from failure
    if not tenants:
        attempt.error = "The consent granted access to no organisation. Start again and tick one."
        attempt.save(update_fields=["error"])
        raise ConnectError(attempt.error)
    try:
        if len(tenants) == 1:
            attempt.completed_connection = _connection_activate(tenant=tenants[0], token=token, user=user)
        else:
            attempt.pending_token_ciphertext = encrypt_token(token)
            attempt.pending_tenants = [
                {"id": tenant["id"], "tenantId": tenant["tenantId"], "tenantName": tenant["tenantName"]}
                for tenant in tenants
            ]
    except TokenDecryptError as failure:  # a malformed XERO_TOKEN_KEY: nothing can be stored
        attempt.error = f"Connecting failed: {failure}"
        attempt.save(update_fields=["error"])
        raise ConnectError(attempt.error) from failure
    attempt.save()
    return attempt


def connect_choose_tenant(*, attempt: OAuthAttempt, tenant_id: str, user=None) -> XeroConnection:
    if attempt.completed_connection_id or attempt.pending_token_ciphertext is None:
        raise ConnectError("This choice has already been made. Start again with Connect to change it.")
    if not attempt_started_by(attempt, user):
        raise ConnectError("This Xero sign-in was started by another user.")
    if attempt_expired(attempt):
        raise ConnectError("This Xero sign-in has expired. Start again with Connect.")
    tenant = next((t for t in attempt.pending_tenants if t["tenantId"] == str(tenant_id)), None)
    if tenant is None:
        raise ConnectError("Choose one of the organisations listed.")
    try:
        connection = _connection_activate(tenant=tenant, token=decrypt_token(attempt.pending_token_ciphertext),
                                          user=user)
    except TokenDecryptError as failure:
        raise ConnectError(f"Connecting failed: {failure}") from failure
    attempt.pending_token_ciphertext = None
    attempt.completed_connection = connection
    attempt.save(update_fields=["pending_token_ciphertext", "completed_connection"])
    return connection


@transaction.atomic
def _connection_activate(*, tenant: dict, token: dict, user) -> XeroConnection:
    tenant_id = uuid.UUID(tenant["tenantId"])
    XeroConnection.objects.filter(is_current=True).exclude(tenant_id=tenant_id).update(is_current=False)
    connection, _ = XeroConnection.objects.update_or_create(
        tenant_id=tenant_id,
        defaults={
            "tenant_name": tenant["tenantName"],
            "xero_connection_id": tenant.get("id", ""),
            "is_current": True,
            "status": XeroConnection.Status.ACTIVE,
            "status_reason": "",
            "token_ciphertext": encrypt_token(token),
            "access_token_expires_at": _expiry(token),
            "connected_at": timezone.now(),
            "connected_by": user,
            "reconnect_notified_at": None,
        },
    )
    logger.info("xero connection %s connected to tenant %s", connection.pk, tenant_id)
    return connection


def _expiry(token: dict):
    return datetime.datetime.fromtimestamp(token["expires_at"], tz=datetime.UTC)


@dataclass
class DisconnectResult:
    connection: XeroConnection
    problems: list[str]


def disconnect(*, connection: XeroConnection) -> DisconnectResult:
    """Remove the connection at Xero, revoke the token, and forget it here. Whatever Xero answers, the
    site stops using the connection; anything Xero did not confirm is reported to staff."""
    problems = []
    try:
        token = decrypt_token(connection.token_ciphertext)
    except TokenDecryptError as failure:
        token, problems = None, [str(failure)]
    if token:
        try:
            if connection.xero_connection_id:
                client.delete_connection(access_token=connection_access_token(connection.pk),
                                         connection_id=connection.xero_connection_id)
        except XeroError as failure:
            problems.append(f"Xero did not confirm removing the connection: {failure}")
        try:
            current = decrypt_token(XeroConnection.objects.get(pk=connection.pk).token_ciphertext)
            client.revoke(refresh_token_value=current["refresh_token"])
        except XeroError as failure:
            problems.append(f"Xero did not confirm revoking the token: {failure}")
    XeroConnection.objects.filter(pk=connection.pk).update(
        status=XeroConnection.Status.DISCONNECTED, is_current=False, token_ciphertext=b"",
        access_token_expires_at=None, status_reason="Disconnected by staff.",
    )
    connection.refresh_from_db()
    logger.info("xero connection %s disconnected (%d problems)", connection.pk, len(problems))
    return DisconnectResult(connection=connection, problems=problems)


# --- Tokens ------------------------------------------------------------------------------------------


def connection_access_token(connection_id: int, *, rejected: str = "") -> str:
    """A valid access token for the connection, refreshing it first if it is about to expire, or if it is
    `rejected`: one Xero has just refused (401) although it looked valid.

    Any number of workers may ask at once: one takes the refresh lease and refreshes, the rest wait for
    the stored token to change and then use the new one.
    """
    lease_name, owner = f"xero-token-refresh:{connection_id}", new_owner()
    lease_seconds = settings.XERO_HTTP_TIMEOUT + 30
    give_up_at = time.monotonic() + lease_seconds + 5
    while True:
        connection = XeroConnection.objects.get(pk=connection_id)
        token = _usable_token(connection)
        if not _needs_refresh(token, rejected):
            return token["access_token"]
        if lease_acquire(name=lease_name, owner=owner, seconds=lease_seconds):
            try:
                # Someone may have refreshed between our read and our lease.
                connection.refresh_from_db()
                token = _usable_token(connection)
                if _needs_refresh(token, rejected):
                    token = _refresh(connection, token)
                return token["access_token"]
            finally:
                lease_release(name=lease_name, owner=owner)
        if time.monotonic() > give_up_at:
            raise XeroUnavailable("Timed out waiting for another worker to refresh the Xero token.")
        time.sleep(POLL_SECONDS)


def connection_token_problem(connection: XeroConnection | None, *, this_process_only: bool = False) -> str:
    """Why the connection's stored token cannot be read: by this process's key, or (unless
    `this_process_only`) by a worker's, which paused the sync for it. Empty when all is well."""
    if connection is None or connection.status != XeroConnection.Status.ACTIVE:
        return ""
    try:
        decrypt_token(connection.token_ciphertext)
    except TokenDecryptError as failure:
        return str(failure)
    paused = connection.paused_until is not None and connection.paused_until > timezone.now()
    if not this_process_only and paused and connection.pause_reason.startswith(TOKEN_KEY_PROBLEM):
        return connection.pause_reason
    return ""


def _needs_refresh(token: dict, rejected: str) -> bool:
    # A rejected token that is no longer the stored one was already replaced by another worker.
    return token["expires_at"] - REFRESH_MARGIN_SECONDS <= time.time() or token["access_token"] == rejected


def _usable_token(connection: XeroConnection) -> dict:
    if connection.status != XeroConnection.Status.ACTIVE:
        raise XeroAuthorizationError(
            f"The Xero connection is {connection.get_status_display().lower()}: {connection.status_reason}"
        )
    try:
        return decrypt_token(connection.token_ciphertext)
    except TokenDecryptError as failure:
        # The token is fine; this process's key is not. Reconnecting would throw away a working connection.
        logger.error("xero connection %s: %s Syncing pauses until the key is right.", connection.pk, failure)
        raise TokenKeyProblem(f"{TOKEN_KEY_PROBLEM}: {failure}") from failure


def _refresh(connection: XeroConnection, token: dict) -> dict:
    try:
        fresh = client.refresh_token(refresh_token_value=token["refresh_token"])
    except XeroAuthorizationError as failure:
        connection_needs_reconnect(connection_id=connection.pk, reason=f"Refreshing the token failed: {failure}")
        raise
    # Store the rotated pair before anyone uses it: the old refresh token is now retired at Xero.
    XeroConnection.objects.filter(pk=connection.pk).update(
        token_ciphertext=encrypt_token(fresh), access_token_expires_at=_expiry(fresh), refreshed_at=timezone.now()
    )
    logger.info("xero connection %s token refreshed", connection.pk)
    return fresh


@transaction.atomic
def connection_needs_reconnect(*, connection_id: int, reason: str) -> None:
    """Pause syncing with this connection until staff reconnect; tell ADMINS once per episode."""
    XeroConnection.objects.filter(pk=connection_id, status=XeroConnection.Status.ACTIVE).update(
        status=XeroConnection.Status.NEEDS_RECONNECT, status_reason=reason
    )
    first_notice = XeroConnection.objects.filter(pk=connection_id, reconnect_notified_at__isnull=True).update(
        reconnect_notified_at=timezone.now()
    )
    logger.warning("xero connection %s needs reconnecting: %s", connection_id, reason)
    if first_notice:
        connection = XeroConnection.objects.get(pk=connection_id)
        transaction.on_commit(
            lambda: mail_admins(
                f"Xero needs reconnecting: {connection.tenant_name}",
                f"The shop can no longer reach the Xero organisation {connection.tenant_name}.\n\n"
                f"Reason: {reason}\n\nChanges keep being recorded and are sent once you reconnect on the "
                "Xero settings page (/xero/settings/).",
            ),
            robust=True,
        )


def connection_gateway(connection: XeroConnection) -> client.AccountingGateway:
    """The Accounting API for this connection. If Xero refuses the connection itself (revoked, or the
    app was disconnected in Xero), the connection is marked as needing reconnecting."""
    return client.AccountingGateway(
        tenant_id=str(connection.tenant_id),
        access_token=lambda: connection_access_token(connection.pk),
        on_authorization_error=lambda reason: connection_needs_reconnect(connection_id=connection.pk, reason=reason),
        renew_token=lambda rejected: connection_access_token(connection.pk, rejected=rejected),
    )
