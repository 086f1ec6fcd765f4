"""The admin API under ``/_emulator/``: the Python handle's controls over HTTP, for a demo run from a
shell or another process. JSON in, JSON out; no authentication (the server answers loopback only, and
takes a POST only with a JSON content type, which a web page on another origin cannot send without a
CORS preflight the emulator never grants: see server.py).

In paths, ``{tenant}`` is a tenant id or ``default``. Bodies are the handle's keyword arguments;
bookkeeper bodies are Xero fields (``{"Name": ..., "EmailAddress": ...}``).

The call log it returns hides every secret (tokens, authorization codes, PKCE verifiers, client
secrets, Authorization headers): anything on the machine can read it. The Python handle's
``Emulator.calls`` keeps them, for tests in the same process.
"""

import re

from . import page, rules
from .emulator import BookkeeperError, Emulator

_TENANT = r"(?P<tenant>[^/]+)"
_ID = r"(?P<id>[^/]+)"
_DOCUMENT = r"(?P<document>invoices|creditnotes)"
DOCUMENT_KINDS = {"invoices": rules.INVOICE, "creditnotes": rules.CREDIT_NOTE}


def _document_kind(match: re.Match) -> rules.DocumentKind:
    return DOCUMENT_KINDS[match.group("document").lower()]  # routes match regardless of case


def _tenant(emulator: Emulator, match: re.Match) -> str:
    tenant = match.group("tenant")
    return emulator.default_tenant_id if tenant == "default" else tenant


MASKED = "[masked]"
# OAuth2's own field names (lower case; Xero's Accounting fields are PascalCase, so "Code" is an account's).
SECRET_FIELDS = frozenset({
    "access_token", "refresh_token", "id_token", "token", "code", "code_verifier", "client_secret",
    "authorization", "password",
})


def masked(value: object) -> object:
    """`value` with every secret field's value replaced, at any depth."""
    if isinstance(value, dict):
        return {key: MASKED if key in SECRET_FIELDS and _present(item) else masked(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def _present(item: object) -> bool:
    return item not in (None, "")


def _calls(emulator: Emulator, match, body):
    return [masked({**call, "at": call["at"].isoformat()}) for call in emulator.calls_to()]


def _stats(emulator: Emulator, match, body):
    return emulator.stats()


def _reset_stats(emulator, match, body):
    emulator.reset_peak_in_flight(body.get("tenant_id"))
    return emulator.stats()


def _add_org(emulator, match, body):
    return {"tenant_id": emulator.add_organisation(**body)}


def _register_app(emulator, match, body):
    emulator.register_app(**body)
    return {}


def _consent(emulator, match, body):
    emulator.authorize_grants_tenants(body.get("tenant_ids"))
    return {}


def _issue_token(emulator, match, body):
    return emulator.issue_token(**body)


def _revoke(emulator, match, body):
    emulator.revoke_refresh_token(body["refresh_token"])
    return {}


def _disconnect(emulator, match, body):
    emulator.disconnect_tenant(_tenant(emulator, match))
    return {}


def _limits(emulator, match, body):
    emulator.set_limits(**body)
    return {}


def _fault(emulator, match, body):
    emulator.inject_fault(**body)
    return {}


def _clear_faults(emulator, match, body):
    emulator.clear_faults()
    return {}


def _advance(emulator, match, body):
    emulator.clock.advance(float(body["seconds"]))
    return {"now": emulator.clock.now().isoformat()}


def _reset(emulator, match, body):
    emulator.reset()
    return {}


def _create_contact(emulator, match, body):
    return emulator.create_contact(_tenant(emulator, match), **body)


def _edit_contact(emulator, match, body):
    return emulator.edit_contact(match.group("id"), _tenant(emulator, match), **body)


def _archive_contact(emulator, match, body):
    return emulator.archive_contact(match.group("id"), _tenant(emulator, match))


def _create_document(emulator, match, body):
    return emulator.create_document(_document_kind(match), _tenant(emulator, match), **body)


def _void_document(emulator, match, body):
    return emulator.void_document(_document_kind(match), match.group("id"), _tenant(emulator, match))


def _bank_payment(emulator, match, body):
    return emulator.record_bank_payment(match.group("id"), tenant_id=_tenant(emulator, match), **body)


def _edit_invoice(emulator, match, body):
    return emulator.edit_invoice(match.group("id"), _tenant(emulator, match), **body)


def _delete_payment(emulator, match, body):
    return emulator.delete_payment(match.group("id"), _tenant(emulator, match))


def _allocate_credit_note(emulator, match, body):
    return emulator.allocate_credit_note(match.group("id"), tenant_id=_tenant(emulator, match), **body)


def _delete_allocation(emulator, match, body):
    return emulator.delete_allocation(match.group("id"), match.group("allocation"), _tenant(emulator, match))


def _refund_credit_note(emulator, match, body):
    return emulator.refund_credit_note(match.group("id"), tenant_id=_tenant(emulator, match), **body)


POST_ROUTES = [
    (r"/_emulator/orgs", _add_org),
    (r"/_emulator/apps", _register_app),
    (r"/_emulator/consent", _consent),
    (r"/_emulator/tokens", _issue_token),
    (r"/_emulator/tokens/revoke", _revoke),
    (rf"/_emulator/orgs/{_TENANT}/disconnect", _disconnect),
    (r"/_emulator/limits", _limits),
    (r"/_emulator/faults", _fault),
    (r"/_emulator/faults/clear", _clear_faults),
    (r"/_emulator/clock/advance", _advance),
    (r"/_emulator/reset", _reset),
    (r"/_emulator/stats/reset", _reset_stats),
    (rf"/_emulator/orgs/{_TENANT}/contacts", _create_contact),
    (rf"/_emulator/orgs/{_TENANT}/contacts/{_ID}", _edit_contact),
    (rf"/_emulator/orgs/{_TENANT}/contacts/{_ID}/archive", _archive_contact),
    (rf"/_emulator/orgs/{_TENANT}/{_DOCUMENT}", _create_document),
    (rf"/_emulator/orgs/{_TENANT}/{_DOCUMENT}/{_ID}/void", _void_document),
    (rf"/_emulator/orgs/{_TENANT}/invoices/{_ID}/payments", _bank_payment),
    (rf"/_emulator/orgs/{_TENANT}/invoices/{_ID}", _edit_invoice),
    (rf"/_emulator/orgs/{_TENANT}/payments/{_ID}/delete", _delete_payment),
    (rf"/_emulator/orgs/{_TENANT}/creditnotes/{_ID}/allocations", _allocate_credit_note),
    (rf"/_emulator/orgs/{_TENANT}/creditnotes/{_ID}/allocations/(?P<allocation>[^/]+)/delete", _delete_allocation),
    (rf"/_emulator/orgs/{_TENANT}/creditnotes/{_ID}/refunds", _refund_credit_note),
]
GET_ROUTES = [(r"/_emulator/calls", _calls), (r"/_emulator/stats", _stats)]
DETAIL_PAGE = re.compile(rf"/_emulator/orgs/{_TENANT}/(?P<kind>contacts|invoices|creditnotes|payments)/{_ID}")


def handle(emulator: Emulator, method: str, route: str, path: str, body: object) -> tuple[int, object]:
    """-> (status, JSON payload or an HTML string). ``route`` is the lower-cased path, ``path`` the original
    (IDs keep their case)."""
    if method == "GET":
        match = DETAIL_PAGE.fullmatch(path.rstrip("/"))
        if match:
            with emulator.lock:
                html = page.detail(emulator, _tenant(emulator, match), match.group("kind"), match.group("id"))
            return (200, html) if html is not None else (404, {"error": "not found"})
    routes = {"GET": GET_ROUTES, "POST": POST_ROUTES}.get(method, [])
    for pattern, action in routes:
        match = re.fullmatch(pattern, path.rstrip("/"), re.IGNORECASE)
        if match:
            if not isinstance(body, dict):
                return 400, {"error": "the body must be a JSON object"}
            try:
                return 200, action(emulator, match, body)
            except BookkeeperError as error:
                return 400, {"error": str(error), "messages": error.messages}
            except KeyError as error:
                return 404, {"error": str(error.args[0]) if error.args else "not found"}
            except (TypeError, ValueError) as error:
                return 400, {"error": str(error)}
    return 404, {"error": f"no admin endpoint {method} {route}"}
