"""The emulator's state and the Python handle tests and demos drive it with.

One :class:`Emulator` holds every organisation, the identity service, rate limits, injected faults
and the call log. The HTTP server (server.py) serves it; :func:`xero_emulator.testing.running_emulator`
starts both. The handle's bookkeeper methods act as a person in Xero's web app would: they apply
Xero's rules directly, are not API calls, and are neither rate limited nor logged in ``calls``.
"""

import json
import os
import tempfile
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

from . import render, rules
from .clock import Clock
from .faults import FaultPlan
from .identity import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SCOPE, Identity
from .limits import IdempotencyCache, Limits, RateLimiter
from .serialize import dumps, loads
from .state import Organisation

DEFAULT_ORGANISATION = "Demo Company (NZ)"
DEFAULT_APP_NAME = "Xero Emulator Demo App"
STATE_VERSION = 1


class BookkeeperError(ValueError):
    """A bookkeeper action Xero would refuse; ``messages`` are Xero's validation messages."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class Emulator:
    """Everything "Xero" knows, plus the controls a test needs.

    Options: ``state_file`` (load at start if present, save after every write); the default rate
    limits ``per_minute`` per ``window_seconds``, ``per_day``, ``concurrent``, ``limits_enabled`` and
    ``app_per_minute``; ``idempotency_seconds`` (how long Idempotency-Key answers are replayed);
    ``seed`` for random faults; ``hang_seconds`` for a "hang" fault without its own ``seconds``;
    ``max_calls`` kept in the call log.
    """

    def __init__(
        self,
        *,
        state_file: str | os.PathLike | None = None,
        per_minute: int = 60,
        window_seconds: float = 60,
        per_day: int = 5000,
        concurrent: int = 5,
        limits_enabled: bool = True,
        app_per_minute: int = 10000,
        idempotency_seconds: float = 360,
        seed: int = 0,
        hang_seconds: float = 30,
        max_calls: int = 10000,
    ) -> None:
        self.clock = Clock()
        # One lock around every read and write of organisation and identity state.
        self.lock = threading.RLock()
        self.limiter = RateLimiter(
            self.clock,
            Limits(per_minute, window_seconds, per_day, concurrent, limits_enabled),
            app_per_minute,
        )
        self.idempotency = IdempotencyCache(self.clock, idempotency_seconds)
        self.faults = FaultPlan(seed)
        self.hang_seconds = hang_seconds
        self.max_calls = max_calls
        self.calls: list[dict] = []
        self.stopping = threading.Event()  # set at shutdown, so hanging handlers let go at once
        self.base_url = ""
        self.state_file = Path(state_file) if state_file else None
        self.orgs: dict[str, Organisation] = {}
        self.identity = Identity(self.clock, self._org_names)
        self.default_tenant_id = ""
        if self.state_file and self.state_file.exists():
            self._load(self.state_file)
        else:
            self._seed()
            self.persist()

    # ---------------------------------------------------------------- URLs (set once the server listens)

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/identity/connect/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/connect/token"

    @property
    def revocation_url(self) -> str:
        return self.base_url + "/connect/revocation"

    @property
    def connections_url(self) -> str:
        return self.base_url + "/connections"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api.xro/2.0"

    # ---------------------------------------------------------------- organisations, apps, tokens

    def _seed(self, tenant_id: str | None = None) -> None:
        org = Organisation.create(
            DEFAULT_ORGANISATION, tenant_id=tenant_id, base_currency="NZD", now=self.clock.now()
        )
        self.orgs[org.tenant_id] = org
        self.default_tenant_id = org.tenant_id
        self.identity.register_app(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, None, DEFAULT_APP_NAME)

    def _org_names(self) -> dict[str, str]:
        return {tenant_id: org.name for tenant_id, org in self.orgs.items()}

    def organisation(self, tenant_id: str | None = None) -> Organisation:
        tenant_id = (tenant_id or self.default_tenant_id).lower()
        if tenant_id not in self.orgs:
            raise KeyError(f"no organisation with tenant id {tenant_id}")
        return self.orgs[tenant_id]

    def add_organisation(
        self, name: str, *, tenant_id: str | None = None, base_currency: str = "NZD", day_limit: int = 5000
    ) -> str:
        with self.lock:
            if tenant_id and tenant_id.lower() in self.orgs:
                raise ValueError(f"an organisation with tenant id {tenant_id} exists")
            org = Organisation.create(
                name,
                tenant_id=tenant_id and tenant_id.lower(),
                base_currency=base_currency,
                now=self.clock.now(),
            )
            self.orgs[org.tenant_id] = org
            self.persist()
        self.limiter.configure(org.tenant_id, per_day=day_limit)
        return org.tenant_id

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        with self.lock:
            self.identity.register_app(client_id, client_secret, list(redirect_uris))
            self.persist()

    def authorize_grants_tenants(self, tenant_ids: list[str] | None) -> None:
        """Which organisations the next consents grant (None: all of them, the default)."""
        with self.lock:
            self.identity.consent_tenant_ids = (
                [t.lower() for t in tenant_ids] if tenant_ids is not None else None
            )

    def issue_token(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        tenant_ids: list[str] | None = None,
        scope: str = DEFAULT_SCOPE,
    ) -> dict:
        """Consent and token exchange in one step, for tests that skip the OAuth dance. Returns the token
        the way OAuth clients hand it over (requests-oauthlib, xero-python): ``scope`` as a list, plus
        ``expires_at`` (emulator clock), and only the keys xero-python's OAuth2Token accepts."""
        with self.lock:
            if client_id not in self.identity.apps:
                raise ValueError(f"unknown client_id {client_id}")
            tenants = [t.lower() for t in tenant_ids] if tenant_ids is not None else None
            grant = self.identity.consent(client_id, " ".join(scope.split()), tenants)
            token = self.identity.issue(grant)
            self.persist()
        token["scope"] = token["scope"].split()
        token["expires_at"] = self.clock.time() + token["expires_in"]
        return token

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """Simulate a refresh token revoked or expired at Xero: its family answers invalid_grant/401."""
        with self.lock:
            if not self.identity.revoke_refresh_token(refresh_token):
                raise KeyError("unknown refresh token")
            self.persist()

    def disconnect_tenant(self, tenant_id: str) -> None:
        """Simulate the organisation disconnecting the app in Xero: its tokens now get 403 there."""
        with self.lock:
            self.identity.disconnect_tenant(tenant_id.lower())
            self.persist()

    # ---------------------------------------------------------------- limits, faults, clock

    def set_limits(
        self,
        tenant_id: str | None = None,
        *,
        per_minute: int = 60,
        window_seconds: float = 60,
        per_day: int = 5000,
        concurrent: int = 5,
        enabled: bool = True,
    ) -> None:
        """Set one tenant's limits, or (tenant_id None) every tenant's and the default for new ones."""
        self.limiter.configure(
            tenant_id and tenant_id.lower(),
            per_minute=per_minute,
            window_seconds=window_seconds,
            per_day=per_day,
            concurrent=concurrent,
            enabled=enabled,
        )

    def in_flight(self, tenant_id: str | None = None) -> int:
        """Accounting calls of this tenant being served right now."""
        return self.limiter.in_flight((tenant_id or self.default_tenant_id).lower())

    def peak_in_flight(self, tenant_id: str | None = None) -> int:
        """The most Accounting calls of this tenant served at the same moment since the last
        reset_peak_in_flight() (or reset()): a high-water mark, so no overlap is missed between samples."""
        return self.limiter.peak_in_flight((tenant_id or self.default_tenant_id).lower())

    def reset_peak_in_flight(self, tenant_id: str | None = None) -> None:
        """Start the high-water mark again from the calls in flight now (tenant_id None: every tenant)."""
        self.limiter.reset_peak_in_flight(tenant_id and tenant_id.lower())

    def stats(self) -> dict:
        """What the admin API's GET /_emulator/stats answers: calls in flight now, and their peak, per
        tenant that has had a call."""
        return {"tenants": self.limiter.stats()}

    def inject_fault(
        self,
        kind: str,
        *,
        count: int | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        after_write: bool = False,
        probability: float | None = None,
        seconds: float | None = None,
        problem: str = "minute",
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``count`` matching calls fail (see faults.py). ``count`` defaults to 1, or to
        "every matching call" when ``probability`` is given. Without ``path_contains`` only Accounting
        API calls match; with it, identity calls (e.g. "/connect/token") can fail too."""
        self.faults.add(
            kind,
            count=count,
            method=method,
            path_contains=path_contains,
            after_write=after_write,
            probability=probability,
            seconds=seconds,
            problem=problem,
            retry_after=retry_after,
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Back to a fresh start: one seeded organisation (same tenant id), the default app, no tokens,
        no faults, empty call log and rate-limit counters. The clock keeps its offset."""
        with self.lock:
            self.orgs.clear()
            self.identity = Identity(self.clock, self._org_names)
            self._seed(self.default_tenant_id)
            self.limiter.reset()
            self.idempotency.clear()
            self.faults.clear()
            self.calls.clear()
            self.persist()

    # ---------------------------------------------------------------- the call log

    def record_call(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)
            if len(self.calls) > self.max_calls:
                # A long demo run must not grow without bound; tests look at recent calls.
                del self.calls[: len(self.calls) - self.max_calls // 2]

    def calls_to(self, method: str | None = None, path_contains: str | None = None) -> list[dict]:
        with self.lock:
            return [
                call
                for call in self.calls
                if (method is None or call["method"] == method.upper())
                and (path_contains is None or path_contains.lower() in call["path"].lower())
            ]

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()

    # ---------------------------------------------------------------- state views (as the API shows them)

    def _view(self, tenant_id: str | None, build) -> list[dict]:
        with self.lock:
            org = self.organisation(tenant_id)
            items = build(org)
        # Through JSON and back, so a view holds exactly what an API client would parse (Decimal money).
        return loads(dumps(items))

    def contacts(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(tenant_id, lambda org: [render.contact_json(c) for c in org.contacts.values()])

    def invoices(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(tenant_id, lambda org: [render.invoice_json(org, i) for i in org.invoices.values()])

    def credit_notes(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(
            tenant_id, lambda org: [render.credit_note_json(org, n) for n in org.credit_notes.values()]
        )

    def payments(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(tenant_id, lambda org: [render.payment_json(org, p) for p in org.payments.values()])

    def accounts(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(tenant_id, lambda org: [render.account_json(a) for a in org.accounts.values()])

    def tax_rates(self, tenant_id: str | None = None) -> list[dict]:
        return self._view(tenant_id, lambda org: [render.tax_rate_json(t) for t in org.tax_rates.values()])

    # ---------------------------------------------------------------- bookkeeper actions

    def _bookkeeper(self, tenant_id: str | None, action, show) -> dict:
        with self.lock:
            org = self.organisation(tenant_id)
            try:
                record = action(org, self.clock.now())
            except rules.Rejected as rejected:
                raise BookkeeperError(rejected.messages) from None
            self.persist()
            return loads(dumps(show(org, record)))

    @staticmethod
    def _find(found: dict | None, what: str, ref: str) -> dict:
        if found is None:
            raise KeyError(f"no {what} {ref}")
        return found

    def create_contact(self, tenant_id: str | None = None, **fields) -> dict:
        return self._bookkeeper(
            tenant_id,
            lambda org, now: rules.save_contact(org, fields, now=now, mode="create"),
            lambda org, contact: render.contact_json(contact),
        )

    def edit_contact(self, contact_id: str, tenant_id: str | None = None, **fields) -> dict:
        def edit(org, now):
            contact = self._find(org.contact_by_ref(contact_id), "contact", contact_id)
            return rules.save_contact(org, fields, now=now, mode="update", target=contact)

        return self._bookkeeper(tenant_id, edit, lambda org, contact: render.contact_json(contact))

    def archive_contact(self, contact_id: str, tenant_id: str | None = None) -> dict:
        return self.edit_contact(contact_id, tenant_id, ContactStatus="ARCHIVED")

    def create_document(self, kind: rules.DocumentKind, tenant_id: str | None = None, **fields) -> dict:
        """An invoice or a credit note (as `kind` says) typed straight into Xero: a sales one (ACCREC,
        ACCRECCREDIT), approved, unless the fields say otherwise."""
        element = {"Type": kind.sales_type, "Status": "AUTHORISED", **fields}
        return self._bookkeeper(
            tenant_id,
            lambda org, now: rules.save_document(org, element, kind, now=now, mode="create"),
            lambda org, document: render.document_json(org, kind, document),
        )

    def void_document(self, kind: rules.DocumentKind, ref: str, tenant_id: str | None = None) -> dict:
        """Void the invoice or credit note (as `kind` says) that `ref`, an id or a number, names."""

        def void(org, now):
            document = self._find(kind.by_ref(org, ref), kind.noun, ref)
            return rules.save_document(org, {"Status": "VOIDED"}, kind, now=now, mode="update",
                                       target=document)

        return self._bookkeeper(tenant_id, void, lambda org, voided: render.document_json(org, kind, voided))

    def create_invoice(self, tenant_id: str | None = None, **fields) -> dict:
        return self.create_document(rules.INVOICE, tenant_id, **fields)

    def void_invoice(self, invoice_id: str, tenant_id: str | None = None) -> dict:
        return self.void_document(rules.INVOICE, invoice_id, tenant_id)

    def edit_invoice(self, invoice_id: str, tenant_id: str | None = None, **fields) -> dict:
        """A bookkeeper changing an invoice in Xero (its lines, say): Xero's rules for an update apply, so an
        invoice with money applied refuses content changes."""

        def edit(org, now):
            invoice = self._find(org.invoice_by_ref(invoice_id), "invoice", invoice_id)
            return rules.save_document(org, fields, rules.INVOICE, now=now, mode="update", target=invoice,
                                       unitdp=4)

        return self._bookkeeper(tenant_id, edit, lambda org, invoice: render.invoice_json(org, invoice))

    def create_credit_note(self, tenant_id: str | None = None, **fields) -> dict:
        return self.create_document(rules.CREDIT_NOTE, tenant_id, **fields)

    def void_credit_note(self, credit_note_id: str, tenant_id: str | None = None) -> dict:
        return self.void_document(rules.CREDIT_NOTE, credit_note_id, tenant_id)

    def allocate_credit_note(
        self,
        credit_note_id: str,
        invoice_id: str,
        amount: Decimal | str | int | float,
        date: date | str | None = None,
        tenant_id: str | None = None,
    ) -> dict:
        """Apply part of a credit note to an invoice (ids or numbers), dated today unless ``date`` says.
        Returns the allocation as PUT /CreditNotes/{id}/Allocations answers it (with its AllocationID)."""

        def allocate(org, now):
            note = self._find(org.credit_note_by_ref(credit_note_id), "credit note", credit_note_id)
            invoice = self._find(org.invoice_by_ref(invoice_id), "invoice", invoice_id)
            element = {
                "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                "Amount": amount,
                "Date": _iso_date(date) if date is not None else now.date().isoformat(),
            }
            return rules.allocate_credit_note(org, note, element, now=now)

        return self._bookkeeper(tenant_id, allocate, render.allocation_json)

    def delete_allocation(self, credit_note_id: str, allocation_id: str, tenant_id: str | None = None) -> dict:
        def delete(org, now):
            note = self._find(org.credit_note_by_ref(credit_note_id), "credit note", credit_note_id)
            allocation = org.allocations.get(allocation_id.lower())
            if allocation is None or allocation["CreditNoteID"] != note["CreditNoteID"]:
                raise KeyError(f"no allocation {allocation_id} on credit note {credit_note_id}")
            return rules.delete_allocation(org, allocation, now=now)

        return self._bookkeeper(
            tenant_id, delete, lambda org, allocation: render.allocation_json(org, allocation, deleted=True)
        )

    def refund_credit_note(
        self,
        credit_note_id: str,
        account_code: str,
        amount: Decimal | str | int | float,
        date: date | str | None = None,
        reference: str = "",
        tenant_id: str | None = None,
    ) -> dict:
        """Money paid back to the customer from a credit note, out of the given account."""

        def refund(org, now):
            note = self._find(org.credit_note_by_ref(credit_note_id), "credit note", credit_note_id)
            element = {
                "CreditNote": {"CreditNoteID": note["CreditNoteID"]},
                "Account": {"Code": account_code},
                "Amount": amount,
                "Reference": reference,
            }
            if date is not None:
                element["Date"] = _iso_date(date)
            return rules.create_payment(org, element, now=now)

        return self._bookkeeper(tenant_id, refund, render.payment_json)

    def delete_payment(self, payment_id: str, tenant_id: str | None = None) -> dict:
        """A bookkeeper deleting a payment or a refund in Xero: the invoice owes it again (the credit note
        has its credit back)."""

        def delete(org, now):
            payment = self._find(org.payments.get(payment_id.lower()), "payment", payment_id)
            return rules.delete_payment(org, payment, {"Status": "DELETED"}, now=now)

        return self._bookkeeper(tenant_id, delete, render.payment_json)

    def record_bank_payment(
        self,
        invoice_id: str,
        *,
        amount: Decimal | str | int | float,
        account_code: str,
        date: date | str | None = None,
        reference: str | None = None,
        tenant_id: str | None = None,
    ) -> dict:
        """A deposit reconciled from the bank feed against an invoice, into the given account."""
        element = {
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": account_code},
            "Amount": amount,
            "IsReconciled": True,
        }
        if date is not None:
            element["Date"] = _iso_date(date)
        if reference is not None:
            element["Reference"] = reference

        def pay(org, now):
            invoice = self._find(org.invoice_by_ref(invoice_id), "invoice", invoice_id)
            element["Invoice"] = {"InvoiceID": invoice["InvoiceID"]}
            return rules.create_payment(org, element, now=now)

        return self._bookkeeper(tenant_id, pay, render.payment_json)

    # ---------------------------------------------------------------- persistence

    def persist(self) -> None:
        """Save to the state file, if there is one (called after every write, under the lock)."""
        if self.state_file is not None:
            self.save(self.state_file)

    def save(self, path: str | os.PathLike) -> None:
        """Write the whole state atomically: a temporary file in the same directory, then a rename."""
        path = Path(path)
        with self.lock:
            snapshot = {
                "version": STATE_VERSION,
                "default_tenant_id": self.default_tenant_id,
                "organisations": [org.to_storable() for org in self.orgs.values()],
                "identity": self.identity.to_storable(),
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(snapshot, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise

    def _load(self, path: Path) -> None:
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        if snapshot.get("version") != STATE_VERSION:
            raise ValueError(f"{path}: unsupported state file version {snapshot.get('version')}")
        self.orgs = {}
        for stored in snapshot["organisations"]:
            org = Organisation.from_storable(stored)
            self.orgs[org.tenant_id] = org
        self.identity.load(snapshot["identity"])
        self.default_tenant_id = snapshot["default_tenant_id"]


def _iso_date(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()
