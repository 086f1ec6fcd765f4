"""The one gateway to Xero: every HTTP call to Xero's identity service and Accounting API goes through
here, and this is the only module that imports xero_python.

It passes a timeout on every call, switches off urllib3's hidden retries (they would sleep for a
Retry-After of hours inside a GET or PUT: docs/xero-api.md section 11), reads the rate-limit headers of
every response, and turns every failure into one of xero_sync.errors, so the services above decide
what to retry. It refuses to call Xero at all inside an open database transaction (see
`XeroCallInsideTransaction`).
"""

import base64
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from django.conf import settings
from django.db import connection as database
from oauthlib.oauth2 import InvalidGrantError
from oauthlib.oauth2 import OAuth2Error as OAuthProtocolError
from requests_oauthlib import OAuth2Session
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException, HTTPStatusException, NotFoundException, RateLimitException

from .errors import (
    XeroAuthorizationError,
    XeroNotFound,
    XeroRateLimited,
    XeroRejected,
    XeroTokenRejected,
    XeroUnavailable,
)

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _allow_http_to_loopback(*urls: str) -> None:
    # oauthlib refuses plain-http endpoints. The built-in emulator and local development serve plain
    # http on loopback only, so permit it there; a real Xero endpoint is https and unaffected.
    plain = [url for url in urls if url.startswith("http://")]
    if plain and all(urlsplit(url).hostname in LOOPBACK_HOSTS for url in plain):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    # Xero may grant the scopes in another order or drop optional ones; that is not an error for us.
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"


def _timeout() -> int:
    return settings.XERO_HTTP_TIMEOUT


# --- No transaction held across a call ---------------------------------------------------------------


class XeroCallInsideTransaction(RuntimeError):
    """A programming error, not a Xero failure (so no service retries it): a Xero call was made inside
    an open database transaction. A call can take up to the HTTP timeout, and every row lock the
    transaction holds would be held that long, blocking the other workers; a rollback would also forget
    what Xero did. Call Xero first, then write what it answered in a short transaction of its own."""


# How many enclosing atomic blocks this thread's code did not open itself: a test's own transaction
# (pytest-django opens one around each test that uses the database; tests/conftest.py counts them).
# Zero outside tests, and in any thread a test starts (a new thread starts with an empty context).
_enclosing_atomic_blocks: ContextVar[int] = ContextVar("xero_gateway_enclosing_atomic_blocks", default=0)


@contextlib.contextmanager
def tolerating_enclosing_atomic_blocks(depth: int) -> Iterator[None]:
    """For a test harness: the `depth` atomic blocks open now were opened by the harness around the whole
    test, so only blocks opened inside them count as a transaction held across a call."""
    token = _enclosing_atomic_blocks.set(depth)
    try:
        yield
    finally:
        _enclosing_atomic_blocks.reset(token)


def _refuse_inside_transaction(operation: str) -> None:
    # Reading these attributes opens no database connection; a thread that has none is never in a block.
    if database.in_atomic_block and len(database.atomic_blocks) > _enclosing_atomic_blocks.get():
        raise XeroCallInsideTransaction(
            f"Xero call {operation!r} inside an open database transaction (transaction.atomic): call Xero "
            "outside it and save the answer in a transaction of its own."
        )


# --- Identity: OAuth2 consent, tokens, connections ---------------------------------------------------


def _session(**kwargs) -> OAuth2Session:
    _allow_http_to_loopback(settings.XERO_AUTHORIZE_URL, settings.XERO_TOKEN_URL)
    return OAuth2Session(settings.XERO_CLIENT_ID, redirect_uri=settings.XERO_REDIRECT_URI,
                         scope=settings.XERO_SCOPES, **kwargs)


def authorization_url(*, state: str, code_challenge: str) -> str:
    url, _ = _session().authorization_url(
        settings.XERO_AUTHORIZE_URL, state=state, code_challenge=code_challenge, code_challenge_method="S256"
    )
    return url


def _token_call(operation: str, call: Callable[[], dict]) -> dict:
    _refuse_inside_transaction(operation)
    try:
        token = call()
    except InvalidGrantError as error:
        raise XeroAuthorizationError("Xero refused the grant (invalid_grant): reconnect to Xero.") from error
    except OAuthProtocolError as error:
        raise XeroAuthorizationError(f"Xero's identity service refused: {error.error}") from error
    except requests.RequestException as error:
        raise XeroUnavailable(f"Xero's identity service did not answer: {type(error).__name__}") from error
    return normalise_token(token)


def normalise_token(token: dict) -> dict:
    """Keep the keys we store, with the scope as a list (Xero sends a space-separated string)."""
    scope = token.get("scope") or []
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token", ""),
        "token_type": token.get("token_type", "Bearer"),
        "expires_at": float(token["expires_at"]),
        "scope": scope.split() if isinstance(scope, str) else list(scope),
    }


def exchange_code(*, code: str, code_verifier: str) -> dict:
    return _token_call("exchange_code", lambda: _session().fetch_token(
        settings.XERO_TOKEN_URL, code=code, code_verifier=code_verifier,
        client_secret=settings.XERO_CLIENT_SECRET, include_client_id=True, timeout=_timeout(),
    ))


def refresh_token(*, refresh_token_value: str) -> dict:
    return _token_call("refresh_token", lambda: _session().refresh_token(
        settings.XERO_TOKEN_URL, refresh_token=refresh_token_value, client_id=settings.XERO_CLIENT_ID,
        client_secret=settings.XERO_CLIENT_SECRET, include_client_id=True, timeout=_timeout(),
    ))


def _identity_request(method: str, url: str, **kwargs) -> requests.Response:
    _refuse_inside_transaction(f"{method} {urlsplit(url).path}")
    try:
        response = requests.request(method, url, timeout=_timeout(), **kwargs)
    except requests.RequestException as error:
        raise XeroUnavailable(f"Xero did not answer {method} {url}: {type(error).__name__}") from error
    if response.status_code in (401, 403):
        raise XeroAuthorizationError(f"Xero refused {method} {urlsplit(url).path}: {response.status_code}")
    if response.status_code >= 500:
        raise XeroUnavailable(f"Xero answered {response.status_code} to {method} {urlsplit(url).path}")
    if response.status_code >= 400:
        raise XeroRejected(f"Xero answered {response.status_code} to {method} {urlsplit(url).path}")
    return response


def revoke(*, refresh_token_value: str) -> None:
    _identity_request(
        "POST", settings.XERO_REVOKE_URL, data={"token": refresh_token_value},
        auth=(settings.XERO_CLIENT_ID, settings.XERO_CLIENT_SECRET),
    )


def auth_event_id(access_token: str) -> str | None:
    """The consent that produced this token, read from the JWT (not verified: it only narrows a list)."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims.get("authentication_event_id")


def list_connections(*, access_token: str) -> list[dict]:
    """The organisations this token may reach (only those the last consent granted, when Xero says)."""
    params = {}
    if event := auth_event_id(access_token):
        params["authEventId"] = event
    response = _identity_request(
        "GET", settings.XERO_CONNECTIONS_URL, params=params, headers={"Authorization": f"Bearer {access_token}"}
    )
    return [tenant for tenant in response.json() if tenant.get("tenantType") == "ORGANISATION"]


def delete_connection(*, access_token: str, connection_id: str) -> None:
    _identity_request(
        "DELETE", f"{settings.XERO_CONNECTIONS_URL.rstrip('/')}/{connection_id}",
        headers={"Authorization": f"Bearer {access_token}"},
    )


# --- Accounting API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What Xero says is left, from the last response's headers (None where it did not say)."""

    minute_remaining: int | None = None
    day_remaining: int | None = None
    app_minute_remaining: int | None = None


def _header_int(headers, name: str) -> int | None:
    value = headers.get(name) if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _limits_from(headers) -> Limits:
    return Limits(
        minute_remaining=_header_int(headers, "X-MinLimit-Remaining"),
        day_remaining=_header_int(headers, "X-DayLimit-Remaining"),
        app_minute_remaining=_header_int(headers, "X-AppMinLimit-Remaining"),
    )


def _error_body(error: ApiException) -> dict:
    try:
        return json.loads(error.body or b"{}", parse_float=Decimal)
    except (TypeError, ValueError):
        return {}


def _rejection_message(body: dict, fallback: str) -> str:
    messages = [
        problem.get("Message", "")
        for element in body.get("Elements", [])
        for problem in element.get("ValidationErrors", [])
    ]
    return "; ".join(message for message in messages if message) or body.get("Message") or body.get(
        "Detail") or fallback


class AccountingGateway:
    """Accounting API calls for one organisation. `access_token` is asked for before every request, so
    a token refreshed by another worker is picked up at once.

    Calls return Xero's JSON as dicts (money as Decimal), not the SDK's models: mappers read Xero's own
    field names, and large pulls skip building thousands of model objects.
    """

    def __init__(self, *, tenant_id: str, access_token: Callable[[], str],
                 on_authorization_error: Callable[[str], None] = lambda reason: None,
                 renew_token: Callable[[str], object] | None = None):
        """`renew_token(rejected)` replaces an access token Xero refused with 401 (unless someone already
        has); without it a 401 counts as a lost connection at once."""
        self.tenant_id = str(tenant_id)
        self._on_authorization_error = on_authorization_error
        self._renew_token = renew_token
        self._token_in_use = ""
        self.limits = Limits()
        self.calls_made = 0
        # Configuration's metaclass hands out copies of the first instance ever built and ignores the
        # arguments of later calls, so set the token holder on our copy rather than passing it in.
        configuration = Configuration()
        configuration.oauth2_token = OAuth2Token(client_id=settings.XERO_CLIENT_ID,
                                                 client_secret=settings.XERO_CLIENT_SECRET)
        api_client = ApiClient(
            configuration,
            oauth2_token_getter=lambda: self._sdk_token(self._hand_out(access_token())),
            oauth2_token_saver=self._sdk_must_not_refresh,
        )
        # No hidden retries: a 429/503 comes straight back to us (see the module docstring).
        api_client.rest_client.pool_manager = urllib3.PoolManager(
            num_pools=4, maxsize=8, retries=False, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where()
        )
        self._api = AccountingApi(api_client, base_url=settings.XERO_API_URL)
        self._api_client = api_client

    def _hand_out(self, access_token: str) -> str:
        self._token_in_use = access_token
        return access_token

    @staticmethod
    def _sdk_token(access_token: str) -> dict:
        # expires_at=None: the SDK treats the token as valid and never refreshes it itself; refreshing
        # happens in services.connection, under a lock, so two workers never rotate the same token.
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": 1800,
                "scope": list(settings.XERO_SCOPES), "expires_at": None}

    @staticmethod
    def _sdk_must_not_refresh(token: dict) -> None:
        raise RuntimeError("xero-python tried to refresh a token; refreshing belongs to services.connection")

    def call(self, operation: str, **kwargs: Any) -> dict:
        """Call an AccountingApi operation by its SDK name, e.g. call("get_invoices", page=1)."""
        try:
            try:
                return self._call(operation, **kwargs)
            except XeroTokenRejected:
                if self._renew_token is None:
                    raise
                # Xero did nothing with a 401'd request, so sending it again cannot duplicate anything.
                self._renew_token(self._token_in_use)
                return self._call(operation, **kwargs)
        except XeroAuthorizationError as error:
            self._on_authorization_error(str(error))
            raise

    def _call(self, operation: str, **kwargs: Any) -> dict:
        _refuse_inside_transaction(operation)
        method = getattr(self._api, operation)
        self.calls_made += 1
        try:
            response = method(self.tenant_id, _preload_content=False, _request_timeout=_timeout(), **kwargs)
        except RateLimitException as error:
            self.limits = _limits_from(error.headers)
            raise XeroRateLimited(error.rate_limit or "minute", _header_int(error.headers, "Retry-After")) from error
        except NotFoundException as error:
            raise XeroNotFound(f"Xero has no such record ({operation})") from error
        except HTTPStatusException as error:
            self.limits = _limits_from(error.headers)
            body = _error_body(error)
            if error.status == 400:
                if body.get("error") == "invalid_grant":
                    raise XeroAuthorizationError("Xero refused the grant (invalid_grant)") from error
                raise XeroRejected(_rejection_message(body, "Xero rejected the request"), body) from error
            if error.status in (401, 403):
                raise (XeroTokenRejected if error.status == 401 else XeroAuthorizationError)(
                    f"Xero refused access ({error.status} {_rejection_message(body, error.reason or '')})"
                ) from error
            raise XeroUnavailable(f"Xero answered {error.status} to {operation}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise XeroUnavailable(f"Xero did not answer {operation}: {type(error).__name__}") from error
        self.limits = _limits_from(response.getheaders())
        return json.loads(response.data or b"{}", parse_float=Decimal)
