"""The HTTP front: one loopback host serving Xero's identity paths, the Accounting API, the admin API
(``/_emulator/...``) and the HTML overview (``/``).

An Accounting API call passes, in order: bearer token (401), xero-tenant-id (403), rate limits (429,
counted per tenant), an injected fault, the Idempotency-Key replay cache, then the endpoint itself.
Every identity and accounting call is appended to ``Emulator.calls`` before its answer is written, so a
test that has its response can already see the call.
"""

import ipaddress
import logging
import math
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import admin, api, errors, page
from .emulator import Emulator
from .identity import OAuthError
from .serialize import dumps, loads

logger = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
API_PREFIX = "/api.xro/2.0/"
MAX_IDEMPOTENCY_KEY = 128
REDACTED = "[redacted]"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    json: object = None  # the payload before encoding, for the call log


def json_reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, dumps(payload).encode(), JSON, dict(headers or {}), payload)


def html_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), HTML)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


def make_server(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
    """Bind (port 0: any free port) and tell the emulator its base URL. Call serve_forever() next."""
    server = EmulatorServer((host, port), emulator)
    bound_host, bound_port = server.server_address[:2]
    emulator.base_url = f"http://{bound_host}:{bound_port}"
    return server


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as urllib3 pools expect; every reply carries Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "XeroEmulator/1.0"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; with Nagle's algorithm on, the client's delayed ACK
        # would stall every keep-alive reply by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:
        logger.info("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # ---------------------------------------------------------------- plumbing

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {key.lower(): value for key, value in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-request (a killed worker): no server acts on a request it never
            # received whole. Answering it would also store a "body could not be read" 400 under its
            # Idempotency-Key, replayed to the client's complete retry for the next six minutes.
            self.close_connection = True
            return
        route = path.rstrip("/").lower() or "/"
        method = self.command

        if route == "/" and method == "GET":
            with self.emulator.lock:
                self._send(html_reply(200, page.index(self.emulator)))
        elif route == "/_emulator" or route.startswith("/_emulator/"):
            self._admin(method, route, path, body)
        elif route.startswith(API_PREFIX):
            call = self._new_call(method, path, query, headers, body)
            self._accounting(call, method, path, query, headers, body)
        elif route in (
            "/identity/connect/authorize",
            "/connect/token",
            "/connect/revocation",
            "/connections",
        ) or (route.startswith("/connections/")):
            call = self._new_call(method, path, query, headers, body)
            self._identity(call, method, route, path, query, headers, body)
        else:
            self._send(json_reply(404, errors.not_found()))

    def _new_call(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> dict:
        logged_headers = dict(headers)
        if "authorization" in logged_headers:
            scheme = logged_headers["authorization"].split(" ", 1)[0]
            logged_headers["authorization"] = f"{scheme} {REDACTED}"
        return {
            "method": method,
            "path": path,
            "query": dict(query),
            "headers": logged_headers,
            "request_json": _logged_body(headers, body),
            "status": None,
            "response_json": None,
            "tenant_id": (headers.get("xero-tenant-id") or "").strip().lower() or None,
            "at": self.emulator.clock.now(),
            "replayed": False,
            "fault": None,
        }

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _finish(self, call: dict, reply: Reply) -> None:
        call["status"], call["response_json"] = reply.status, reply.json
        self.emulator.record_call(call)
        self._send(reply)

    def _drop(self, call: dict) -> None:
        """Close the connection without a response, as a dead load balancer would."""
        self.emulator.record_call(call)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self, call: dict, execute, *, accounting: bool, limit_headers: dict[str, str]) -> Reply | None:
        """The answer to a call after the fault plan: a Reply, or None to close without answering.
        A fault fires instead of the call, or after it (after_write); a "hang" waits here."""
        fault = self.emulator.faults.pick(call["method"], call["path"], accounting=accounting)
        if fault is None or fault.after_write:
            try:
                reply = execute()
            except Exception:
                logger.exception("emulator failure on %s %s", call["method"], call["path"])
                reply = json_reply(500, errors.server_error())
        if fault is None:
            reply.headers.update(limit_headers)
            return reply
        call["fault"] = fault.kind
        if fault.kind == "hang":
            # Wait on the stop event, so shutting the emulator down frees a hanging handler at once.
            self.emulator.stopping.wait(
                fault.seconds if fault.seconds is not None else self.emulator.hang_seconds
            )
        if fault.kind in ("hang", "drop"):
            return None
        if fault.kind == "429":
            headers = dict(limit_headers)
            headers["X-MinLimit-Remaining" if fault.problem == "minute" else "X-DayLimit-Remaining"] = "0"
            headers["X-Rate-Limit-Problem"] = fault.problem
            headers["Retry-After"] = str(fault.retry_after or self._default_retry_after(fault.problem, call))
            return json_reply(429, errors.rate_limited(fault.problem), headers)
        if fault.kind == "500":
            return json_reply(500, errors.server_error(), limit_headers)
        return json_reply(503, errors.unavailable(), limit_headers)

    def _deliver(self, call: dict, reply: Reply | None) -> None:
        if reply is None:
            self._drop(call)
        else:
            self._finish(call, reply)

    def _default_retry_after(self, problem: str, call: dict) -> int:
        if problem == "minute":
            tenant = call["tenant_id"]
            return math.ceil(self.emulator.limiter.limits(tenant).window_seconds) if tenant else 60
        now = self.emulator.clock.now()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1, math.ceil((midnight - now).total_seconds()))

    # ---------------------------------------------------------------- accounting

    def _accounting(
        self, call: dict, method: str, path: str, query: dict, headers: dict, body: bytes
    ) -> None:
        emulator = self.emulator
        with emulator.lock:
            grant = emulator.identity.grant_for(_bearer(headers))
            tenant_id = call["tenant_id"]
            reachable = (
                grant is not None
                and tenant_id in emulator.orgs
                and emulator.identity.can_reach(grant, tenant_id)
            )
            provider = emulator.identity.apps[grant.client_id].name if grant else ""
        if grant is None:
            self._finish(
                call,
                json_reply(401, errors.unauthorized(), {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
            )
            return
        if not reachable:
            # Missing, unknown or not-connected tenant: Xero answers all three with 403.
            self._finish(call, json_reply(403, errors.forbidden()))
            return
        admission = emulator.limiter.admit(tenant_id)
        if not admission.admitted:
            self._finish(call, json_reply(429, errors.rate_limited(admission.problem), admission.headers))
            return
        try:
            reply = self._serve(
                call,
                lambda: self._execute(call, method, path, query, headers, body, tenant_id, provider),
                accounting=True,
                limit_headers=admission.headers,
            )
        finally:
            # The slot frees before the client can see the answer, so a client that fires its next call
            # the moment it has this answer never trips the concurrency limit on its own finished call.
            # (A hang holds its slot while it waits, as a slow Xero call would.)
            emulator.limiter.release(tenant_id)
        self._deliver(call, reply)

    def _execute(self, call, method, path, query, headers, body, tenant_id, provider) -> Reply:
        emulator = self.emulator
        key = headers.get("idempotency-key") if method in ("PUT", "POST") else None
        if key and len(key) > MAX_IDEMPOTENCY_KEY:
            detail = f"The Idempotency-Key header must be at most {MAX_IDEMPOTENCY_KEY} characters."
            return json_reply(400, errors.post_data_invalid(detail))
        cache_key = (tenant_id, method, path, key) if key else None
        # /{Resource}[/{id}[/{SubResource}[/{id}]]], e.g. /CreditNotes/{id}/Allocations/{AllocationID}
        segments = path.strip("/").split("/")[2:]
        request = api.ApiRequest(
            method=method,
            resource=api.RESOURCES.get(segments[0].lower()) if 1 <= len(segments) <= 4 else None,
            ref=segments[1] if len(segments) >= 2 else None,
            sub=segments[2].lower() if len(segments) >= 3 else None,
            sub_ref=segments[3] if len(segments) == 4 else None,
            query=query,
            headers=headers,
            body=call["request_json"],
            bad_body=bool(body) and call["request_json"] is None,
        )
        with emulator.lock:
            if cache_key:
                stored = emulator.idempotency.get(cache_key)
                if stored is not None:
                    call["replayed"] = True
                    return Reply(stored.status, stored.body, stored.content_type, {}, stored.json)
            result = api.handle(
                emulator.orgs[tenant_id], request, now=emulator.clock.now(), provider=provider
            )
            reply = json_reply(result.status, result.body)
            if cache_key:
                emulator.idempotency.put(cache_key, reply.status, reply.body, reply.content_type, reply.json)
            if result.wrote:
                emulator.persist()
        return reply

    # ---------------------------------------------------------------- identity

    def _identity(self, call, method, route, path, query, headers, body) -> None:
        emulator = self.emulator
        form = _form(body)
        authorization = headers.get("authorization")

        def execute() -> Reply:
            with emulator.lock:
                if route == "/identity/connect/authorize" and method == "GET":
                    return self._authorize(query)
                if route == "/connect/token" and method == "POST":
                    try:
                        token = emulator.identity.token(form, authorization)
                    except OAuthError as error:
                        return json_reply(error.status, {"error": error.code})
                    emulator.persist()
                    return json_reply(200, token, {"Cache-Control": "no-store", "Pragma": "no-cache"})
                if route == "/connect/revocation" and method == "POST":
                    try:
                        emulator.identity.revoke(form, authorization)
                    except OAuthError as error:
                        return json_reply(error.status, {"error": error.code})
                    emulator.persist()
                    return Reply(200)
                grant = emulator.identity.grant_for(_bearer(headers))
                if grant is None:
                    return json_reply(401, errors.unauthorized())
                if route == "/connections" and method == "GET":
                    return json_reply(
                        200, emulator.identity.connections_json(grant, query.get("authEventId"))
                    )
                if route.startswith("/connections/") and method == "DELETE":
                    if not emulator.identity.delete_connection(grant, path.rstrip("/").rsplit("/", 1)[1]):
                        return json_reply(404, errors.not_found())
                    emulator.persist()
                    return Reply(204)
                return json_reply(404, errors.not_found())

        self._deliver(call, self._serve(call, execute, accounting=False, limit_headers={}))

    def _authorize(self, query: dict) -> Reply:
        try:
            location = self.emulator.identity.authorize(query)
        except OAuthError as error:
            return html_reply(400, page.oauth_error(error.code))
        self.emulator.persist()
        return Reply(302, headers={"Location": location})

    # ---------------------------------------------------------------- admin

    def _admin(self, method: str, route: str, path: str, body: bytes) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send(json_reply(403, {"error": "the admin API answers loopback clients only"}))
            return
        if method != "GET":
            refusal = _cross_origin_refusal(self.headers)
            if refusal:
                self._send(json_reply(refusal[0], {"error": refusal[1]}))
                return
        try:
            payload = loads(body) if body else {}
        except ValueError:
            self._send(json_reply(400, {"error": "the body is not JSON"}))
            return
        status, result = admin.handle(self.emulator, method, route, path, payload)
        self._send(html_reply(status, result) if isinstance(result, str) else json_reply(status, result))


def _cross_origin_refusal(headers) -> tuple[int, str] | None:
    """Why a state-changing admin request may have come from a web page, or None.

    Any page the user's browser opens may send a "simple" cross-origin POST to a loopback port (form
    fields or text/plain, no preflight) and could reset or fault the emulator. Such a request can never
    carry Content-Type: application/json without a CORS preflight, which this server never grants; and a
    browser names the page's origin in Origin, which must then be loopback too."""
    media_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return 415, "admin requests must be JSON: send Content-Type: application/json"
    origin = headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).hostname not in LOOPBACK_HOSTS:
        return 403, f"the admin API refuses requests from web pages on {origin}"
    if origin == "null":
        return 403, "the admin API refuses requests from sandboxed or file pages"
    return None


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _bearer(headers: dict) -> str:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _logged_body(headers: dict, body: bytes) -> object:
    """The request body for the call log: parsed JSON, or a parsed form with the client secret hidden."""
    if not body:
        return None
    if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
        form = _form(body)
        if "client_secret" in form:
            form["client_secret"] = REDACTED
        return form
    try:
        return loads(body)
    except ValueError:
        return None
