"""The Accounting API endpoints (``/api.xro/2.0/...``) for one organisation, independent of HTTP.

The caller (server.py) has already authenticated the call, picked the tenant, applied rate limits and
holds the state lock.
"""

from dataclasses import dataclass, field
from datetime import datetime

from . import errors, reading, render, rules
from .query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    QueryError,
    apply_order,
    paginate,
    parse_positive_int,
    where_predicate,
)
from .serialize import parse_http_datetime
from .state import Organisation

RESOURCES = {
    "contacts": "Contacts",
    "invoices": "Invoices",
    "creditnotes": "CreditNotes",
    "payments": "Payments",
    "accounts": "Accounts",
    "taxrates": "TaxRates",
    "organisation": "Organisation",
}
PAGED = ("Contacts", "Invoices", "CreditNotes", "Payments")
TYPE_NAMES = {
    "Contacts": "Contact",
    "Invoices": "Invoice",
    "CreditNotes": "CreditNote",
    "Payments": "Payment",
    "Accounts": "Account",
    "TaxRates": "TaxRate",
}
# The per-element error flag is HasErrors on invoices and credit notes but HasValidationErrors on contacts and
# payments; an allocation has none (the spec's Allocation has ValidationErrors and StatusAttributeString only).
ERROR_FLAGS = {
    "Contacts": "HasValidationErrors",
    "Invoices": "HasErrors",
    "CreditNotes": "HasErrors",
    "Payments": "HasValidationErrors",
}
BAD_BODY = "JSON request body could not be read"
DOCUMENT_KINDS = {"Invoices": rules.INVOICE, "CreditNotes": rules.CREDIT_NOTE}


@dataclass
class ApiRequest:
    method: str
    resource: str | None  # canonical name, e.g. "Invoices"; None for a path Xero does not have
    ref: str | None  # the /{id} part, if any
    sub: str | None = None  # a sub-resource after the id, lower-cased: "allocations"
    sub_ref: str | None = None  # its /{id}, e.g. an AllocationID
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: object = None  # parsed JSON
    bad_body: bool = False  # the body was not JSON


@dataclass
class ApiResult:
    status: int
    body: dict
    wrote: bool = False


def handle(org: Organisation, request: ApiRequest, *, now: datetime, provider: str) -> ApiResult:
    method, resource, ref = request.method, request.resource, request.ref
    if resource is None:
        return ApiResult(404, errors.not_found())
    context = _Context(org, request, now, provider)
    if request.sub is not None:
        return context.allocations()
    if method == "GET":
        return context.get_one() if ref else context.get_list()
    if resource not in PAGED or method not in ("PUT", "POST") or (method == "PUT" and ref):
        return ApiResult(404, errors.not_found())
    if request.bad_body or not isinstance(request.body, dict | list):
        return ApiResult(400, errors.post_data_invalid(BAD_BODY))
    problem = context.unreadable(resource)
    if problem:
        return problem
    if method == "PUT":
        return context.write(mode="create")
    if ref:
        return context.write_one()
    # POST /Payments creates one payment; POST /Contacts, /Invoices and /CreditNotes update or create.
    if resource == "Payments":
        return context.write(mode="create", summarize=True)
    return context.write(mode="upsert")


class _Context:
    def __init__(self, org: Organisation, request: ApiRequest, now: datetime, provider: str) -> None:
        self.org, self.request, self.now, self.provider = org, request, now, provider
        self.resource = request.resource
        self.unitdp = 4 if request.query.get("unitdp") == "4" else 2

    def envelope(self, items: list[dict], pagination: dict | None = None) -> dict:
        # GET /Organisation answers {"Organisations": [...]}; every other collection keeps its path's name.
        collection = "Organisations" if self.resource == "Organisation" else self.resource
        return render.envelope(collection, items, provider=self.provider, now=self.now, pagination=pagination)

    # ------------------------------------------------------------ reads

    def render(self, record: dict) -> dict:
        if self.resource == "Contacts":
            return render.contact_json(record)
        if self.resource == "Invoices":
            return render.invoice_json(self.org, record, unitdp=self.unitdp)
        if self.resource == "CreditNotes":
            return render.credit_note_json(self.org, record, unitdp=self.unitdp)
        return render.payment_json(self.org, record)

    def find(self, ref: str) -> dict | None:
        """The record an /{id} path names (Xero also takes a ContactNumber, an InvoiceNumber or a
        CreditNoteNumber there)."""
        if self.resource == "Contacts":
            return self.org.contact_by_ref(ref)
        if self.resource == "Invoices":
            return self.org.invoice_by_ref(ref)
        if self.resource == "CreditNotes":
            return self.org.credit_note_by_ref(ref)
        if self.resource == "Payments":
            return self.org.payments.get(ref.lower())
        return None

    def get_one(self) -> ApiResult:
        found = self.find(self.request.ref)
        if found is None:
            return ApiResult(404, errors.not_found())
        return ApiResult(200, self.envelope([self.render(found)]))

    def get_list(self) -> ApiResult:
        query = self.request.query
        try:
            if self.resource == "Organisation":
                return ApiResult(200, self.envelope([render.organisation_json(self.org)]))
            items = self._matching(query)
            if query.get("where"):
                keep = where_predicate(query["where"], TYPE_NAMES[self.resource])
                items = [item for item in items if keep(item)]
            if query.get("order"):
                items = apply_order(items, query["order"], TYPE_NAMES[self.resource])
            pagination = None
            if self.resource in PAGED and self._paged():
                page = parse_positive_int(query, "page") or 1
                size = min(parse_positive_int(query, "pageSize") or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
                items, pagination = paginate(items, page, size)
        except QueryError as error:
            return ApiResult(400, errors.query_parse(str(error)))
        return ApiResult(200, self.envelope(items, pagination))

    def _paged(self) -> bool:
        # Without page (or pageSize) Xero returns everything in one response, so this does too.
        return bool(self.request.query.get("page") or self.request.query.get("pageSize"))

    def _matching(self, query: dict) -> list[dict]:
        """Records passing the cheap filters (on stored records), rendered, then the rendered filters."""
        org = self.org
        records = {
            "Contacts": org.contacts,
            "Invoices": org.invoices,
            "CreditNotes": org.credit_notes,
            "Payments": org.payments,
            "Accounts": org.accounts,
            "TaxRates": org.tax_rates,
        }[self.resource].values()
        if self.resource == "Contacts" and not _flag(query, "includeArchived", default=False):
            records = [c for c in records if c["ContactStatus"] != "ARCHIVED"]
        if query.get("IDs") and self.resource in PAGED:
            wanted = _csv(query["IDs"])
            id_field = self.resource[:-1] + "ID"
            records = [r for r in records if r[id_field].lower() in wanted]
        since = self._if_modified_since()
        if since is not None:
            records = [r for r in records if r["UpdatedDateUTC"].replace(microsecond=0) >= since]

        if self.resource == "Accounts":
            return [render.account_json(a) for a in records]
        if self.resource == "TaxRates":
            return [render.tax_rate_json(t) for t in records]
        if self.resource == "Invoices":
            by_document = org.payments_by_document()
            summary = _flag(query, "summaryOnly", default=False)
            items = [
                render.invoice_json(org, invoice, payments=by_document.get(invoice["InvoiceID"], []),
                                    line_items=self._paged(), unitdp=self.unitdp, summary=summary)
                for invoice in records
            ]  # fmt: skip
            return _filter_invoices(items, query)
        if self.resource == "CreditNotes":
            by_document = org.payments_by_document()
            return [
                render.credit_note_json(org, note, payments=by_document.get(note["CreditNoteID"], []),
                                        line_items=self._paged(), unitdp=self.unitdp)
                for note in records
            ]  # fmt: skip
        if self.resource == "Contacts":
            summary = _flag(query, "summaryOnly", default=False)
            items = [render.contact_json(contact, summary=summary) for contact in records]
            return _search(items, query, ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress"))
        return [render.payment_json(org, payment) for payment in records]

    def _if_modified_since(self) -> datetime | None:
        """Accurate to the second, as Xero documents; an unparseable header is ignored, as HTTP says."""
        raw = self.request.headers.get("if-modified-since")
        if not raw or self.resource == "TaxRates":
            return None
        since = parse_http_datetime(raw)
        return since.replace(microsecond=0) if since else None

    # ------------------------------------------------------------ writes

    def elements(self, collection: str | None = None) -> list[object]:
        body = self.request.body
        collection = collection or self.resource
        if isinstance(body, dict):
            wrapped = next((v for k, v in body.items() if k.lower() == collection.lower()), None)
            if wrapped is not None:
                return wrapped if isinstance(wrapped, list) else [wrapped]
            return [body]
        return list(body)

    def _save(self, element: object, mode: str, target: dict | None = None) -> dict:
        if not isinstance(element, dict):
            raise rules.Rejected([BAD_BODY])
        org, now = self.org, self.now
        if self.resource == "Contacts":
            return rules.save_contact(org, element, now=now, mode=mode, target=target)
        if self.resource in DOCUMENT_KINDS:
            kind = DOCUMENT_KINDS[self.resource]
            return rules.save_document(org, element, kind, now=now, mode=mode, target=target,
                                       unitdp=self.unitdp)
        if target is not None:
            return rules.delete_payment(org, target, element, now=now)
        return rules.create_payment(org, element, now=now)

    def unreadable(self, collection: str) -> ApiResult | None:
        problem = reading.unreadable(collection, self.elements(collection))
        if problem:
            # Nothing in a body Xero cannot read is saved, whatever summarizeErrors says.
            return ApiResult(400, errors.post_data_invalid(f"{BAD_BODY}, {problem}"))
        return None

    def _failed(self, element: object, messages: list[str], flag: str | None = "") -> dict:
        echo = dict(element) if isinstance(element, dict) else {}
        flag = ERROR_FLAGS[self.resource] if flag == "" else flag
        if flag:
            echo[flag] = True
        echo["StatusAttributeString"] = "ERROR"
        echo["ValidationErrors"] = [{"Message": message} for message in messages]
        return echo

    def _saved(self, record: dict) -> dict:
        return {**self.render(record), "StatusAttributeString": "OK"}

    def write(self, *, mode: str, summarize: bool | None = None) -> ApiResult:
        """A batch: every element is tried in order. With summarizeErrors (Xero's server default) any
        failure turns the answer into a 400 listing only the failures, although the valid elements
        have been saved (docs §2); with summarizeErrors=false the answer is 200 with every element."""
        return self._batch(
            self.elements(), lambda element: self._saved(self._save(element, mode)), summarize=summarize
        )

    def _batch(self, elements, save, *, summarize: bool | None, collection: str | None = None,
               flag: str | None = "") -> ApiResult:
        if summarize is None:
            summarize = _flag(self.request.query, "summarizeErrors", default=True)
        results, failures, wrote = [], [], False
        for element in elements:
            try:
                results.append(save(element))
                wrote = True
            except rules.Rejected as rejected:
                failure = self._failed(element, rejected.messages, flag)
                results.append(failure)
                failures.append(failure)
        if failures and summarize:
            return ApiResult(400, errors.validation_exception(failures), wrote)
        if collection is None:
            return ApiResult(200, self.envelope(results), wrote)
        body = render.envelope(collection, results, provider=self.provider, now=self.now)
        return ApiResult(200, body, wrote)

    def allocations(self) -> ApiResult:
        """PUT /CreditNotes/{id}/Allocations (a batch, like every write) and
        DELETE /CreditNotes/{id}/Allocations/{AllocationID}; no other sub-resource exists here."""
        request = self.request
        method, allocation_id = request.method, request.sub_ref
        if self.resource != "CreditNotes" or request.sub != "allocations":
            return ApiResult(404, errors.not_found())
        if (method, allocation_id is None) not in (("PUT", True), ("DELETE", False)):
            return ApiResult(404, errors.not_found())
        note = self.org.credit_note_by_ref(request.ref)
        if note is None:
            return ApiResult(404, errors.not_found())
        if method == "DELETE":
            allocation = self.org.allocations.get(allocation_id.lower())
            if allocation is None or allocation["CreditNoteID"] != note["CreditNoteID"]:
                return ApiResult(404, errors.not_found())
            rules.delete_allocation(self.org, allocation, now=self.now)
            return ApiResult(200, render.allocation_json(self.org, allocation, deleted=True), wrote=True)
        if request.bad_body or not isinstance(request.body, dict | list):
            return ApiResult(400, errors.post_data_invalid(BAD_BODY))
        problem = self.unreadable("Allocations")
        if problem:
            return problem

        def allocate(element: object) -> dict:
            if not isinstance(element, dict):
                raise rules.Rejected([BAD_BODY])
            allocation = rules.allocate_credit_note(self.org, note, element, now=self.now)
            return {**render.allocation_json(self.org, allocation), "StatusAttributeString": "OK"}

        return self._batch(
            self.elements("Allocations"), allocate, summarize=None, collection="Allocations", flag=None
        )

    def write_one(self) -> ApiResult:
        """POST /{Resource}/{id}: update one contact, invoice or credit note, or delete one payment."""
        target = self.find(self.request.ref)
        if target is None:
            return ApiResult(404, errors.not_found())
        elements = self.elements()
        element = elements[0] if elements else {}
        try:
            record = self._save(element, "update", target)
        except rules.Rejected as rejected:
            return ApiResult(400, errors.validation_exception([self._failed(element, rejected.messages)]))
        return ApiResult(200, self.envelope([self._saved(record)]), wrote=True)


def _flag(query: dict, name: str, *, default: bool) -> bool:
    """Booleans as clients send them: xero-python sends ``False``/``True``, others ``false``/``true``."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in ("false", "0", "no")


def _csv(raw: str) -> set[str]:
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _search(items: list[dict], query: dict, fields: tuple[str, ...]) -> list[dict]:
    term = (query.get("searchTerm") or "").strip().lower()
    if not term:
        return items
    return [item for item in items if any(term in str(item.get(f) or "").lower() for f in fields)]


def _filter_invoices(items: list[dict], query: dict) -> list[dict]:
    if query.get("InvoiceNumbers"):
        numbers = _csv(query["InvoiceNumbers"])
        items = [i for i in items if i["InvoiceNumber"].lower() in numbers]
    if query.get("ContactIDs"):
        contact_ids = _csv(query["ContactIDs"])
        items = [i for i in items if i["Contact"]["ContactID"] in contact_ids]
    if query.get("Statuses"):
        statuses = {s.upper() for s in _csv(query["Statuses"])}
        items = [i for i in items if i["Status"] in statuses]
    return _search(items, query, ("InvoiceNumber", "Reference"))
