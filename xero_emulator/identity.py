"""Xero's identity service: apps, consent, the token endpoint, revocation and tenant connections.

Model (docs/xero-api.md §9): a consent creates a *grant* (one family of tokens) and a connection per
organisation chosen. Access tokens live 30 minutes. Refresh tokens rotate on every refresh; the one
just replaced keeps working for a 30-minute grace period (so a client whose refresh response got lost
can retry), and a refresh token unused for 60 days expires. A token reaches an organisation while its
grant chose it and the app's connection to it exists.
"""

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote, urlencode, urlsplit

from .clock import Clock

ACCESS_TOKEN_SECONDS = 1800
REFRESH_GRACE_SECONDS = 1800
REFRESH_IDLE_SECONDS = 60 * 24 * 3600
CODE_SECONDS = 300
DEFAULT_SCOPE = (
    "openid profile email offline_access accounting.contacts accounting.invoices accounting.payments "
    "accounting.settings.read"
)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"


class OAuthError(Exception):
    """An OAuth error answered as ``{"error": code}`` with the given HTTP status."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code, self.status = code, status


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str] | None  # None: any loopback URI (the default app, for local runs)
    name: str

    def allows(self, redirect_uri: str) -> bool:
        if self.redirect_uris is not None:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS


@dataclass
class Grant:
    id: str
    client_id: str
    scope: str
    tenant_ids: list[str]
    auth_event_id: str
    public: bool = False  # PKCE without a client secret: refreshes need no secret either
    revoked: bool = False
    current_refresh: str | None = None


@dataclass
class Connection:
    id: str
    client_id: str
    tenant_id: str
    auth_event_id: str
    created: str  # ISO, as Xero's createdDateUtc
    updated: str


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    superseded_at: float | None = None


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float


@dataclass
class AuthCode:
    grant_id: str
    redirect_uri: str
    expires_at: float
    challenge: str | None = None
    challenge_method: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_like(claims: dict) -> str:
    """Looks like Xero's RS256 JWTs (clients may decode the claims, e.g. authentication_event_id);
    the "signature" is random, since the emulator looks tokens up rather than verifying them."""
    header = {"alg": "RS256", "kid": "emulator", "typ": "JWT"}
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(32))]
    )


@dataclass
class Identity:
    clock: Clock
    org_names: Callable[[], dict[str, str]]  # tenant id -> organisation name, for consent and /connections
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    apps: dict[str, App] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    consent_tenant_ids: list[str] | None = None  # what the next consent grants; None = every organisation

    def register_app(
        self, client_id: str, client_secret: str, redirect_uris: list[str] | None, name: str = ""
    ) -> None:
        self.apps[client_id] = App(client_id, client_secret, redirect_uris, name or client_id)

    # ---------------------------------------------------------------- consent

    def consent(self, client_id: str, scope: str, tenant_ids: list[str] | None = None) -> Grant:
        """What the user's "Allow access" click does: a new grant and a connection per organisation."""
        names = self.org_names()
        if tenant_ids is None:
            tenant_ids = self.consent_tenant_ids if self.consent_tenant_ids is not None else list(names)
        chosen = [t for t in tenant_ids if t in names]
        grant = Grant(str(uuid.uuid4()), client_id, scope, chosen, str(uuid.uuid4()))
        self.grants[grant.id] = grant
        stamp = datetime.fromtimestamp(self.clock.time(), UTC).replace(tzinfo=None).isoformat()
        for tenant_id in chosen:
            existing = self._connection(client_id, tenant_id)
            if existing:
                # Re-consenting to a connected organisation keeps the connection, with the new event.
                existing.auth_event_id, existing.updated = grant.auth_event_id, stamp
            else:
                connection = Connection(
                    str(uuid.uuid4()), client_id, tenant_id, grant.auth_event_id, stamp, stamp
                )
                self.connections[connection.id] = connection
        return grant

    def authorize(self, params: dict[str, str]) -> str:
        """GET /identity/connect/authorize -> the redirect URL. Raises OAuthError("invalid_client" /
        "invalid_redirect_uri") for the cases Xero shows an error page for instead of redirecting."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            raise OAuthError("invalid_client")
        redirect_uri = params.get("redirect_uri", "")
        if not app.allows(redirect_uri):
            raise OAuthError("invalid_redirect_uri")
        answer = {"state": params["state"]} if "state" in params else {}
        method = params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None)
        if params.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif not params.get("scope", "").strip():
            answer["error"] = "invalid_scope"
        elif method not in (None, "S256", "plain"):
            answer["error"] = "invalid_request"
        else:
            scope = " ".join(params["scope"].split())
            grant = self.consent(app.client_id, scope)
            code = secrets.token_urlsafe(32)
            self.codes[code] = AuthCode(
                grant.id, redirect_uri, self.clock.time() + CODE_SECONDS, params.get("code_challenge"), method
            )
            answer = {"code": code, "scope": scope, **answer, "session_state": secrets.token_urlsafe(16)}
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(answer)}"

    # ---------------------------------------------------------------- token endpoint

    def token(self, form: dict[str, str], authorization: str | None) -> dict:
        """POST /connect/token. Raises OAuthError with Xero's error codes."""
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form, authorization)
        if grant_type == "refresh_token":
            return self._refresh(form, authorization)
        self._client(form, authorization)
        raise OAuthError("unsupported_grant_type")

    def _client(self, form: dict[str, str], authorization: str | None) -> tuple[App, bool]:
        """Client authentication by HTTP Basic or client_secret_post -> (app, secret_was_given)."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                client_id, secret = (unquote(part) for part in decoded.split(":", 1))
            except ValueError:
                raise OAuthError("invalid_client", 401) from None
        app = self.apps.get(client_id or "")
        if app is None or (secret is not None and not secrets.compare_digest(secret, app.client_secret)):
            raise OAuthError("invalid_client", 401)
        return app, secret is not None

    def _exchange_code(self, form: dict[str, str], authorization: str | None) -> dict:
        app, authenticated = self._client(form, authorization)
        code = self.codes.pop(form.get("code", ""), None)  # single use, whatever happens next
        if code is None or code.expires_at < self.clock.time():
            raise OAuthError("invalid_grant")
        grant = self.grants[code.grant_id]
        if grant.client_id != app.client_id or form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant")
        if code.challenge:
            verifier = form.get("code_verifier", "")
            expected = (
                _b64(hashlib.sha256(verifier.encode()).digest())
                if code.challenge_method == "S256"
                else verifier
            )
            if not verifier or not secrets.compare_digest(expected, code.challenge):
                raise OAuthError("invalid_grant")
            grant.public = not authenticated
        elif not authenticated:
            raise OAuthError("invalid_client", 401)
        return self.issue(grant)

    def _refresh(self, form: dict[str, str], authorization: str | None) -> dict:
        app, authenticated = self._client(form, authorization)
        now = self.clock.time()
        token = self.refresh_tokens.get(form.get("refresh_token", ""))
        grant = self.grants.get(token.grant_id) if token else None
        if grant is None or grant.revoked or grant.client_id != app.client_id:
            raise OAuthError("invalid_grant")
        if not authenticated and not grant.public:
            raise OAuthError("invalid_client", 401)
        if now - token.issued_at > REFRESH_IDLE_SECONDS:
            raise OAuthError("invalid_grant")
        if token.superseded_at is not None and now - token.superseded_at > REFRESH_GRACE_SECONDS:
            raise OAuthError("invalid_grant")
        return self.issue(grant)

    def issue(self, grant: Grant) -> dict:
        """A new token pair for the grant; the refresh token it replaces enters its grace period."""
        now = self.clock.time()
        previous = self.refresh_tokens.get(grant.current_refresh or "")
        if previous is not None and previous.superseded_at is None:
            previous.superseded_at = now
        self._forget_dead_tokens(now)
        claims = {
            "nbf": int(now),
            "exp": int(now) + ACCESS_TOKEN_SECONDS,
            "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources",
            "client_id": grant.client_id,
            "sub": self.user_id,
            "xero_userid": self.user_id,
            "authentication_event_id": grant.auth_event_id,
            "jti": uuid.uuid4().hex,
            "scope": grant.scope.split(),
        }
        access = _jwt_like(claims)
        self.access_tokens[access] = AccessToken(grant.id, now + ACCESS_TOKEN_SECONDS)
        body = {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"}
        if "offline_access" in grant.scope.split():
            refresh = secrets.token_hex(32)
            self.refresh_tokens[refresh] = RefreshToken(grant.id, now)
            grant.current_refresh = refresh
            body["refresh_token"] = refresh
        if "openid" in grant.scope.split():
            body["id_token"] = _jwt_like(
                {**claims, "aud": grant.client_id, "email": "demo@example.com", "given_name": "Demo",
                 "family_name": "Bookkeeper", "preferred_username": "demo@example.com"}
            )  # fmt: skip
        body["scope"] = grant.scope
        return body

    def _forget_dead_tokens(self, now: float) -> None:
        """Expired tokens answer exactly like unknown ones, so they need not be kept (or saved)."""
        for key in [k for k, t in self.access_tokens.items() if t.expires_at <= now]:
            del self.access_tokens[key]
        for key in [
            k
            for k, t in self.refresh_tokens.items()
            if (t.superseded_at is not None and now - t.superseded_at > REFRESH_GRACE_SECONDS)
            or now - t.issued_at > REFRESH_IDLE_SECONDS
        ]:
            del self.refresh_tokens[key]

    # ---------------------------------------------------------------- revocation and connections

    def revoke(self, form: dict[str, str], authorization: str | None) -> None:
        """POST /connect/revocation: the grant's tokens die and its connections go (RFC 7009: an
        unknown token is not an error)."""
        app, _ = self._client(form, authorization)
        token = form.get("token", "")
        entry = self.refresh_tokens.get(token) or self.access_tokens.get(token)
        grant = self.grants.get(entry.grant_id) if entry else None
        if grant is None or grant.client_id != app.client_id:
            return
        self.revoke_grant(grant)
        for connection in list(self.connections.values()):
            if connection.client_id == grant.client_id and connection.tenant_id in grant.tenant_ids:
                del self.connections[connection.id]

    def revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True
        for store in (self.refresh_tokens, self.access_tokens):
            for key in [k for k, v in store.items() if v.grant_id == grant.id]:
                del store[key]

    def revoke_refresh_token(self, refresh_token: str) -> bool:
        """The handle's "this refresh token is dead" (revoked or expired): invalid_grant from now on."""
        token = self.refresh_tokens.get(refresh_token)
        if token is None:
            return False
        self.revoke_grant(self.grants[token.grant_id])
        return True

    def grant_for(self, access_token: str) -> Grant | None:
        token = self.access_tokens.get(access_token)
        if token is None or token.expires_at <= self.clock.time():
            return None
        grant = self.grants[token.grant_id]
        return None if grant.revoked else grant

    def _connection(self, client_id: str, tenant_id: str) -> Connection | None:
        return next(
            (c for c in self.connections.values() if c.client_id == client_id and c.tenant_id == tenant_id),
            None,
        )

    def reachable(self, grant: Grant) -> list[Connection]:
        return [
            c
            for c in self.connections.values()
            if c.client_id == grant.client_id and c.tenant_id in grant.tenant_ids
        ]

    def can_reach(self, grant: Grant, tenant_id: str) -> bool:
        return any(c.tenant_id == tenant_id for c in self.reachable(grant))

    def connections_json(self, grant: Grant, auth_event_id: str | None = None) -> list[dict]:
        names = self.org_names()
        return [
            {
                "id": c.id,
                "authEventId": c.auth_event_id,
                "tenantId": c.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": names.get(c.tenant_id, ""),
                "createdDateUtc": c.created,
                "updatedDateUtc": c.updated,
            }
            for c in self.reachable(grant)
            if auth_event_id is None or c.auth_event_id == auth_event_id
        ]

    def delete_connection(self, grant: Grant, connection_id: str) -> bool:
        connection = self.connections.get(connection_id.lower())
        if connection is None or connection not in self.reachable(grant):
            return False
        del self.connections[connection.id]
        return True

    def disconnect_tenant(self, tenant_id: str) -> None:
        """The organisation disconnected every app from Xero's side."""
        for key in [k for k, c in self.connections.items() if c.tenant_id == tenant_id]:
            del self.connections[key]

    # ---------------------------------------------------------------- persistence

    def to_storable(self) -> dict:
        def table(store):
            return {key: asdict(value) for key, value in store.items()}

        return {
            "user_id": self.user_id,
            "apps": table(self.apps),
            "grants": table(self.grants),
            "connections": table(self.connections),
            "refresh_tokens": table(self.refresh_tokens),
            "access_tokens": table(self.access_tokens),
            "consent_tenant_ids": self.consent_tenant_ids,
        }

    def load(self, stored: dict) -> None:
        self.user_id = stored["user_id"]
        self.apps = {k: App(**v) for k, v in stored["apps"].items()}
        self.grants = {k: Grant(**v) for k, v in stored["grants"].items()}
        self.connections = {k: Connection(**v) for k, v in stored["connections"].items()}
        self.refresh_tokens = {k: RefreshToken(**v) for k, v in stored["refresh_tokens"].items()}
        self.access_tokens = {k: AccessToken(**v) for k, v in stored["access_tokens"].items()}
        self.consent_tenant_ids = stored["consent_tenant_ids"]
