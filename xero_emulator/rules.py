"""Xero's rules for writing contacts, invoices, credit notes, allocations and payments (refunds among them):
validation, totals and status changes.

Each ``save_*`` function validates one element completely before it changes anything, so a rejected
element leaves the organisation untouched; it raises :class:`Rejected` with Xero's messages.
Message texts are Xero's own where docs/xero-api.md or public fixtures quote them; the few that are
not documented anywhere are marked ``# guessed``.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .serialize import parse_date
from .state import Organisation, new_id

CENT = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
HUNDRED = Decimal(100)

# Messages quoted in docs/xero-api.md (§6-§8) or in public integration fixtures.
CONTACT_NAME_TAKEN = (
    "The contact name {name} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)
CONTACT_NUMBER_TAKEN = (
    "The contact number {number} is already assigned to another contact. "
    "The contact number must be unique across all contacts."
)
CONTACT_ARCHIVED = (
    "The contact with the specified contact details has been archived. "
    "The contact must be un-archived before creating new invoices or credit notes."
)
CONTACT_MATCHED_ARCHIVED = "The specified contact details matched an archived contact"
CONTACT_REQUIRED = "A Contact must be specified for this type of transaction"
INVOICE_NUMBER_TAKEN = "Invoice # must be unique."
NOT_VALID_FOR_MODIFICATION = "Invoice not of valid status for modification"
NOT_VALID_FOR_CREATION = "Invoice not of valid status for creation"
HAS_PAYMENTS = "This document cannot be edited as it has a payment or credit note allocated to it."
# Quoted for invoices; the credit note's wording ("... applied to the credit note ...") is guessed.
STATUS_BLOCKED_BY_PAYMENTS = (
    "The status {status} cannot be applied to the {noun} because it has payments or credit notes allocated to it."
)
LINE_ITEMS_REQUIRED = "One or more line items must be specified"
ACCOUNT_REQUIRED = "Account code or ID must be specified."
ACCOUNT_INVALID = "Account code '{code}' is not a valid code for this document."
ACCOUNT_ARCHIVED = (
    "Account code '{code}' has been archived or deleted. Each line item must reference a valid account."
)
TAX_TYPE_INVALID = (
    "The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction."
)
NEGATIVE_QUANTITY = "The quantity value '{quantity}' is invalid. Quantity must not be less than zero."
CURRENCY_NOT_SUBSCRIBED = "Organisation is not subscribed to currency {currency}"
INVOICE_NOT_FOUND = "Invoice could not be found"
PAYMENT_NOT_AUTHORISED = "Payments can only be made against Authorised documents"
PAYMENT_EXCEEDS = "Payment amount exceeds the amount outstanding on this document"
PAYMENT_ACCOUNT_REQUIRED = "You must specify an Account code or Account ID for the payment"
PAYMENT_ACCOUNT_INVALID = "Account must be valid."
CREDIT_NOTE_NUMBER_TAKEN = "Credit Note # must be unique."
# The spec's own example of a PUT /CreditNotes answer.
CREDIT_NOTE_NOT_FOUND = "An existing Credit Note with the specified CreditNoteID could not be found"
# Allocations: xeroizer #320 and xero-php #251 quote these (docs §8b).
ALLOCATION_INVOICE_PAID = "The invoice you are trying to allocate to has already been paid off"
ALLOCATION_EXCEEDS = "Credit Note cannot be allocated as amount is greater than amount outstanding"
ALLOCATION_WRONG_TYPE = "Credit Note cannot be allocated to an incorrect invoice type"
# Not documented anywhere we could find; worded like Xero's other messages.
CREDIT_NOTE_NOT_VALID_FOR_MODIFICATION = "Credit Note not of valid status for modification"  # guessed
CREDIT_NOTE_NOT_VALID_FOR_CREATION = "Credit Note not of valid status for creation"  # guessed
CREDIT_NOTE_TYPE_INVALID = "Credit Note Type must be ACCRECCREDIT or ACCPAYCREDIT."  # guessed
ALLOCATION_NOT_AUTHORISED = "Credit Note must be AUTHORISED before it can be allocated."  # guessed
ALLOCATION_INVOICE_NOT_AUTHORISED = "Credit Notes can only be allocated to AUTHORISED invoices."  # guessed
# docs §8b: the same contact and currency are [?]; refused here so a client never relies on a mismatch.
ALLOCATION_OTHER_CONTACT = "Credit Note cannot be allocated to an invoice of another contact."  # guessed
ALLOCATION_OTHER_CURRENCY = "Credit Note cannot be allocated to an invoice in another currency."  # guessed
ALLOCATION_DATE_REQUIRED = "A Date must be specified for the allocation."  # guessed
ALLOCATION_AMOUNT_NOT_POSITIVE = "Allocation amount must be greater than zero."  # guessed
PAYMENT_TWO_DOCUMENTS = "A payment can be applied to an invoice or a credit note, not both."  # guessed
CONTACT_NAME_REQUIRED = "The contact name must be specified."  # guessed
CONTACT_ID_NOT_FOUND = (
    "The contact with the specified ContactID '{contact_id}' could not be found."  # guessed
)
DESCRIPTION_REQUIRED = "Description needs to be specified for line items without an item."  # guessed
LINE_AMOUNT_MISMATCH = (
    "The line amount {given} does not match the expected line amount {expected}."  # guessed
)
INVOICE_TYPE_INVALID = "Invoice Type must be ACCREC or ACCPAY."  # guessed
PAYMENT_AMOUNT_NOT_POSITIVE = "Payment amount must be greater than zero."  # guessed
PAYMENTS_IMMUTABLE = "Payments cannot be edited. A payment can only be deleted."  # guessed
PAYMENT_ALREADY_DELETED = "This payment has already been deleted."  # guessed

CONTACT_FIELDS = (
    "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName", "CompanyNumber",
    "EmailAddress", "ContactPersons", "BankAccountDetails", "TaxNumber", "TaxNumberType",
    "AccountsReceivableTaxType", "AccountsPayableTaxType", "Addresses", "Phones",
    "SalesDefaultLineAmountType", "PurchasesDefaultLineAmountType", "DefaultCurrency", "XeroNetworkKey",
    "SalesDefaultAccountCode", "PurchasesDefaultAccountCode", "SalesTrackingCategories",
    "PurchasesTrackingCategories", "PaymentTerms", "ContactGroups",
)  # fmt: skip
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED")
CREATABLE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
# On an invoice with payments Xero still lets these change, and does not move UpdatedDateUTC (§4).
FREE_ON_PAID_INVOICE = ("DueDate", "SentToContact", "ExpectedPaymentDate", "PlannedPaymentDate", "Reference")
SILENT_ON_PAID_INVOICE = ("DueDate", "SentToContact", "ExpectedPaymentDate", "PlannedPaymentDate")


class Rejected(Exception):
    """An element failed Xero's validation; ``messages`` are its ValidationErrors."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def to_decimal(value: object, field: str) -> Decimal:
    """A number as clients send it (JSON number, possibly float, or numeric string) -> exact Decimal."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"'{value}' is not a valid value for {field}")
    if isinstance(value, float):
        # repr() gives the shortest string that round-trips, i.e. the figure the client meant.
        value = repr(value)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a valid value for {field}") from None
    if not number.is_finite():
        raise ValueError(f"'{value}' is not a valid value for {field}")
    return number


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------- contacts


def save_contact(
    org: Organisation, element: dict, *, now: datetime, mode: str, target: dict | None = None
) -> dict:
    """Create (mode "create"), update-or-create ("upsert": by ContactID, else ContactNumber, else the
    active contact of that Name) or update ``target`` ("update") from one element. IsCustomer and
    IsSupplier are ignored: Xero sets them itself."""
    existing = target if mode == "update" else _match_contact(org, element) if mode == "upsert" else None
    fields = {key: element[key] for key in CONTACT_FIELDS if key in element}
    if isinstance(fields.get("ContactStatus"), str):
        fields["ContactStatus"] = fields["ContactStatus"].upper()
    merged = {**existing, **fields} if existing else {"ContactStatus": "ACTIVE", **fields}
    errors = _contact_errors(org, merged, existing, element)
    if errors:
        raise Rejected(errors)
    if existing is None:
        contact = {
            "ContactID": new_id(),
            **merged,
            "IsSupplier": False,
            "IsCustomer": False,
            "UpdatedDateUTC": now,
        }
        org.contacts[contact["ContactID"]] = contact
        org.remember("contacts", contact)
        return contact
    if any(existing.get(key) != value for key, value in fields.items()):
        existing.update(fields)
        existing["UpdatedDateUTC"] = now
        org.remember("contacts", existing)
    return existing


def _match_contact(org: Organisation, element: dict) -> dict | None:
    contact_id = element.get("ContactID")
    if contact_id:
        found = org.contacts.get(str(contact_id).lower())
        if found is None:
            raise Rejected([CONTACT_ID_NOT_FOUND.format(contact_id=contact_id)])
        return found
    number = _text(element.get("ContactNumber"))
    found = org.contact_by_number(number) if number else None
    if found is not None:
        return found
    # Neither key names a contact: Xero updates the active contact of the same name, if there is one
    # (a second "David Smith" posted without an id overwrites the first; PUT never does).
    name = _text(element.get("Name"))
    return next((c for c in org.contacts_named(name) if c["ContactStatus"] == "ACTIVE"), None) if name else None


def _contact_errors(org: Organisation, merged: dict, existing: dict | None, element: dict) -> list[str]:
    errors = []
    name = merged.get("Name")
    if not isinstance(name, str) or not name.strip():
        errors.append(CONTACT_NAME_REQUIRED)
        name = None
    status = merged.get("ContactStatus")
    if status not in CONTACT_STATUSES:
        errors.append(f"'{status}' is not a valid ContactStatus.")  # guessed
    if existing and existing["ContactStatus"] == "ARCHIVED" and "ContactStatus" not in element:
        # Editing an archived contact needs it restored (ContactStatus ACTIVE) in the same request.
        errors.append(CONTACT_MATCHED_ARCHIVED)
    if name and status == "ACTIVE":
        taken = any(c is not existing and c["ContactStatus"] == "ACTIVE" for c in org.contacts_named(name))
        if taken:
            errors.append(CONTACT_NAME_TAKEN.format(name=name))
    number = _text(merged.get("ContactNumber"))
    if number:
        holder = org.contact_by_number(number)
        if holder is not None and holder is not existing:
            errors.append(CONTACT_NUMBER_TAKEN.format(number=number))
    return errors


# ---------------------------------------------------------------- invoices and credit notes


@dataclass(frozen=True)
class DocumentKind:
    """What tells an invoice from a credit note. Everything else (lines, tax, totals, numbering, status
    changes, the lock once money is applied) is one code path: Xero computes a credit note as it does an
    invoice (docs §8b)."""

    collection: str  # the Organisation attribute holding them
    id_field: str
    number_field: str
    sales_type: str  # numbered automatically; the number is unique among these
    purchase_type: str
    noun: str  # as Xero's messages name the document
    number_prefix: str
    counter: str  # the Organisation attribute holding the next automatic number
    number_taken: str
    type_invalid: str
    not_found: str
    not_valid_for_modification: str
    not_valid_for_creation: str

    def records(self, org: Organisation) -> dict[str, dict]:
        return getattr(org, self.collection)

    def sales_by_number(self, org: Organisation, number: str) -> dict | None:
        if self.sales_type == "ACCREC":
            return org.accrec_by_number(number)
        return org.accreccredit_by_number(number)

    def by_ref(self, org: Organisation, ref: str) -> dict | None:
        """The document an id or a number names (as the /{id} part of Xero's paths may)."""
        if self.sales_type == "ACCREC":
            return org.invoice_by_ref(ref)
        return org.credit_note_by_ref(ref)


INVOICE = DocumentKind(
    collection="invoices", id_field="InvoiceID", number_field="InvoiceNumber", sales_type="ACCREC",
    purchase_type="ACCPAY", noun="invoice", number_prefix="INV-", counter="next_invoice_number",
    number_taken=INVOICE_NUMBER_TAKEN, type_invalid=INVOICE_TYPE_INVALID, not_found=INVOICE_NOT_FOUND,
    not_valid_for_modification=NOT_VALID_FOR_MODIFICATION, not_valid_for_creation=NOT_VALID_FOR_CREATION,
)  # fmt: skip
CREDIT_NOTE = DocumentKind(
    collection="credit_notes", id_field="CreditNoteID", number_field="CreditNoteNumber",
    sales_type="ACCRECCREDIT", purchase_type="ACCPAYCREDIT", noun="credit note", number_prefix="CN-",
    counter="next_credit_note_number", number_taken=CREDIT_NOTE_NUMBER_TAKEN,
    type_invalid=CREDIT_NOTE_TYPE_INVALID, not_found=CREDIT_NOTE_NOT_FOUND,
    not_valid_for_modification=CREDIT_NOTE_NOT_VALID_FOR_MODIFICATION,
    not_valid_for_creation=CREDIT_NOTE_NOT_VALID_FOR_CREATION,
)  # fmt: skip


def save_document(
    org: Organisation,
    element: dict,
    kind: DocumentKind,
    *,
    now: datetime,
    mode: str,
    target: dict | None = None,
    unitdp: int = 2,
) -> dict:
    """Create, update-or-create (by its id, else its sales number: ACCREC InvoiceNumber, ACCRECCREDIT
    CreditNoteNumber) or update one invoice or credit note, as `kind` says."""
    existing = target if mode == "update" else _match_document(org, element, kind) if mode == "upsert" else None
    errors: list[str] = []
    draft = _document_draft(org, element, existing, kind, now=now, unitdp=unitdp, errors=errors)
    if errors:
        raise Rejected(errors)
    contact = draft.pop("_contact")
    if contact.get("ContactID") is None:
        contact = save_contact(org, contact, now=now, mode="create")
    draft["ContactID"] = contact["ContactID"]
    if kind is INVOICE:
        # Xero flags customers itself, without moving the contact's UpdatedDateUTC (docs §4, §6).
        contact["IsCustomer" if draft["Type"] == "ACCREC" else "IsSupplier"] = True
    if draft["Type"] == kind.sales_type and not draft.get(kind.number_field):
        draft[kind.number_field] = _next_number(org, kind)
    records = kind.records(org)
    if existing is None:
        document = {kind.id_field: new_id(), **draft, "UpdatedDateUTC": now}
        records[document[kind.id_field]] = document
        org.remember(kind.collection, document)
        return document
    changed = [key for key, value in draft.items() if existing.get(key) != value]
    silent = money_applied(org, kind, existing) and set(changed) <= set(SILENT_ON_PAID_INVOICE)
    existing.update(draft)
    org.remember(kind.collection, existing)
    if changed and not silent:
        existing["UpdatedDateUTC"] = now
    return existing


def money_applied(org: Organisation, kind: DocumentKind, document: dict) -> bool:
    """Payments on an invoice or credit allocated to it; refunds of a credit note or allocations from it."""
    document_id = document[kind.id_field]
    if org.live_payments(document_id):
        return True
    if kind is INVOICE:
        return bool(org.allocations_to_invoice(document_id))
    return bool(org.allocations_of_credit_note(document_id))


def _match_document(org: Organisation, element: dict, kind: DocumentKind) -> dict | None:
    document_id = element.get(kind.id_field)
    if document_id:
        found = kind.records(org).get(str(document_id).lower())
        if found is None:
            raise Rejected([kind.not_found])
        return found
    number = _text(element.get(kind.number_field))
    if number and (_text(element.get("Type")).upper() or kind.sales_type) == kind.sales_type:
        return kind.sales_by_number(org, number)
    return None


def _next_number(org: Organisation, kind: DocumentKind) -> str:
    while True:
        counter = getattr(org, kind.counter)
        number = f"{kind.number_prefix}{counter:04d}"
        setattr(org, kind.counter, counter + 1)
        if kind.sales_by_number(org, number) is None:
            return number


def _document_draft(
    org: Organisation,
    element: dict,
    existing: dict | None,
    kind: DocumentKind,
    *,
    now: datetime,
    unitdp: int,
    errors: list[str],
) -> dict:
    """The document as it would be after this write (without ID/UpdatedDateUTC), collecting errors."""
    old = existing or {}
    document_type = old.get("Type") or _text(element.get("Type")).upper()
    if document_type not in (kind.sales_type, kind.purchase_type):
        errors.append(kind.type_invalid)
        document_type = kind.sales_type

    status = _text(element.get("Status")).upper() or old.get("Status") or "DRAFT"
    if status not in INVOICE_STATUSES:
        errors.append(f"'{element.get('Status')}' is not a valid {kind.noun} Status.")  # guessed
        return {}
    applied = bool(existing and money_applied(org, kind, existing))
    if existing is None:
        if status not in CREATABLE_STATUSES:
            errors.append(kind.not_valid_for_creation)
    else:
        problem = _status_change_error(old["Status"], status, applied, kind)
        if problem:
            errors.append(problem)
            return {}

    contact = _resolve_contact(org, element, old, errors)

    draft = {
        "Type": document_type,
        "_contact": contact,
        "Status": status,
        "LineAmountTypes": old.get("LineAmountTypes", "Exclusive"),
        "CurrencyCode": old.get("CurrencyCode", org.base_currency),
        "SentToContact": old.get("SentToContact", False),
    }
    for key in (kind.number_field, "Reference", "BrandingThemeID", "Url"):
        value = element.get(key, old.get(key))
        if value is not None:
            draft[key] = value
    if "SentToContact" in element:
        draft["SentToContact"] = bool(element["SentToContact"])
    if "LineAmountTypes" in element:
        amount_types = LINE_AMOUNT_TYPES.get(_text(element["LineAmountTypes"]).lower())
        if amount_types is None:
            errors.append(f"'{element['LineAmountTypes']}' is not a valid LineAmountTypes value.")  # guessed
        else:
            draft["LineAmountTypes"] = amount_types
    if "CurrencyCode" in element:
        currency = _text(element["CurrencyCode"]).upper()
        if currency != org.base_currency:
            errors.append(CURRENCY_NOT_SUBSCRIBED.format(currency=currency))
        draft["CurrencyCode"] = currency

    for key in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"):
        if element.get(key):
            try:
                draft[key] = parse_date(element[key])
            except ValueError as error:
                errors.append(str(error))
        elif key in old:
            draft[key] = old[key]
    draft.setdefault("Date", now.date())
    if "DueDate" not in draft and document_type == "ACCREC":
        draft["DueDate"] = _sales_due_date(draft["Date"], org.sales_due_day)

    number = _text(draft.get(kind.number_field))
    if document_type == kind.sales_type and number:
        holder = kind.sales_by_number(org, number)
        if holder is not None and holder is not existing:
            errors.append(kind.number_taken)

    lines = _draft_lines(org, element, old, document_type, draft["LineAmountTypes"], status, unitdp, errors)
    draft["LineItems"] = lines
    draft.update(_totals(lines, draft["LineAmountTypes"]))

    if applied:
        # Only dates, references and the sent flag may change once money is allocated.
        locked = [k for k in draft if k not in FREE_ON_PAID_INVOICE and k not in ("_contact", "Status")]
        if contact.get("ContactID") != old["ContactID"] or any(
            _comparable(draft.get(k)) != _comparable(old.get(k)) for k in locked
        ):
            errors.append(HAS_PAYMENTS)
    return draft


def _draft_lines(
    org: Organisation,
    element: dict,
    old: dict,
    invoice_type: str,
    amount_types: str,
    status: str,
    unitdp: int,
    errors: list[str],
) -> list[dict]:
    raw_lines = element.get("LineItems")
    if raw_lines is None and status in ("DELETED", "VOIDED"):
        # Deleting or voiding leaves the lines exactly as they were (even if an account was archived since).
        return [dict(line) for line in old.get("LineItems", [])]
    line_unitdp = unitdp
    if raw_lines is None:
        # Lines not re-sent are re-validated (a DRAFT being approved needs account codes) but keep their
        # figures: stored unit amounts are exact at 4 dp, and the tax stays unless the treatment changed.
        keep_tax = amount_types == old.get("LineAmountTypes")
        raw_lines = [
            line if keep_tax else {k: v for k, v in line.items() if k != "TaxAmount"}
            for line in old.get("LineItems", [])
        ]
        line_unitdp = 4
    if not isinstance(raw_lines, list):
        errors.append(LINE_ITEMS_REQUIRED)
        return []
    old_line_ids = {line["LineItemID"] for line in old.get("LineItems", [])}
    lines = [
        _line(org, raw, invoice_type=invoice_type, amount_types=amount_types, status=status,
              unitdp=line_unitdp, old_line_ids=old_line_ids, errors=errors)
        for raw in raw_lines
    ]  # fmt: skip
    if not lines and status not in ("DRAFT", "DELETED", "VOIDED"):
        errors.append(LINE_ITEMS_REQUIRED)
    return lines


def _comparable(value: object) -> object:
    """Lines compared by content: LineItemIDs are not part of what a payment locks."""
    if isinstance(value, list):
        return [{k: v for k, v in line.items() if k != "LineItemID"} for line in value]
    return value


def _status_change_error(current: str, requested: str, money_applied: bool, kind: DocumentKind) -> str | None:
    if current in ("VOIDED", "DELETED"):
        return kind.not_valid_for_modification
    if requested == current:
        return None
    if requested == "DELETED":
        return None if current in ("DRAFT", "SUBMITTED") else kind.not_valid_for_modification
    if money_applied:
        return STATUS_BLOCKED_BY_PAYMENTS.format(status=requested, noun=kind.noun)
    allowed = {
        "DRAFT": ("SUBMITTED", "AUTHORISED"),
        "SUBMITTED": ("DRAFT", "AUTHORISED"),
        "AUTHORISED": ("VOIDED",),
    }
    return None if requested in allowed.get(current, ()) else kind.not_valid_for_modification


def _sales_due_date(issued: date, day: int) -> date:
    year, month = (issued.year + 1, 1) if issued.month == 12 else (issued.year, issued.month + 1)
    return date(year, month, day)


def _resolve_contact(org: Organisation, element: dict, old: dict, errors: list[str]) -> dict:
    """The invoice's contact: by ContactID, else ContactNumber, else Name, else a new contact (returned
    without a ContactID, created only once the whole invoice is valid)."""
    ref = element.get("Contact")
    if ref is None and old:
        return org.contacts[old["ContactID"]]
    if not isinstance(ref, dict) or not ref:
        errors.append(CONTACT_REQUIRED)
        return {}
    contact = None
    if ref.get("ContactID"):
        contact = org.contacts.get(str(ref["ContactID"]).lower())
        if contact is None:
            errors.append(CONTACT_ID_NOT_FOUND.format(contact_id=ref["ContactID"]))
            return {}
    if contact is None and _text(ref.get("ContactNumber")):
        contact = org.contact_by_number(_text(ref["ContactNumber"]))
    if contact is None and _text(ref.get("Name")):
        named = org.contacts_named(_text(ref["Name"]))
        active = [c for c in named if c["ContactStatus"] == "ACTIVE"]
        contact = (active or named or [None])[0]
    if contact is None:
        new = {key: ref[key] for key in CONTACT_FIELDS if key in ref}
        if not _text(new.get("Name")):
            errors.append(CONTACT_REQUIRED)
        return new
    if contact["ContactStatus"] == "ARCHIVED":
        errors.append(CONTACT_ARCHIVED)
    return contact


def _line(
    org: Organisation,
    raw: object,
    *,
    invoice_type: str,
    amount_types: str,
    status: str,
    unitdp: int,
    old_line_ids: set[str],
    errors: list[str],
) -> dict:
    if not isinstance(raw, dict):
        errors.append(DESCRIPTION_REQUIRED)
        return {}
    line: dict = {"LineItemID": raw.get("LineItemID") if raw.get("LineItemID") in old_line_ids else new_id()}
    description = raw.get("Description")
    if _text(description):
        line["Description"] = description
    elif not _text(raw.get("ItemCode")):
        errors.append(DESCRIPTION_REQUIRED)
    if raw.get("ItemCode"):
        line["ItemCode"] = raw["ItemCode"]

    try:
        figures = _line_figures(raw, unitdp)
    except ValueError as error:
        errors.append(str(error))
        return line
    line.update(figures)

    account = _line_account(org, raw, status, errors)
    if account is not None:
        line["AccountCode"] = account["Code"]
        line["AccountID"] = account["AccountID"]

    tax_type = _text(raw.get("TaxType")).upper() or (account or {}).get("TaxType") or "NONE"
    if amount_types == "NoTax":
        tax_type = "NONE"
    rate = org.tax_rates.get(tax_type)
    if rate is None or rate["Status"] != "ACTIVE":
        errors.append(TAX_TYPE_INVALID.format(tax_type=raw.get("TaxType")))
        return line
    line["TaxType"] = tax_type
    line["TaxAmount"] = _line_tax(raw, line["LineAmount"], rate["EffectiveRate"], amount_types, errors)
    if invoice_type in ("ACCPAY", "ACCPAYCREDIT") and ("DiscountRate" in line or "DiscountAmount" in line):
        errors.append("Discounts are only supported on ACCREC invoices.")  # guessed
    line["Tracking"] = raw.get("Tracking") or []
    return line


def _line_figures(raw: dict, unitdp: int) -> dict:
    """Quantity, UnitAmount, discount and LineAmount, rounded as Xero rounds them.

    LineAmount = round(Quantity x UnitAmount x (1 - DiscountRate/100), 2), or minus DiscountAmount;
    UnitAmount is first rounded to 2 dp (4 with unitdp=4). A LineAmount sent alone fills the gap.
    """
    unit_places = FOUR_DP if unitdp == 4 else CENT
    given_amount = to_decimal(raw["LineAmount"], "LineAmount") if raw.get("LineAmount") is not None else None
    quantity = to_decimal(raw["Quantity"], "Quantity") if raw.get("Quantity") is not None else None
    unit = to_decimal(raw["UnitAmount"], "UnitAmount") if raw.get("UnitAmount") is not None else None
    if unit is None and given_amount is not None:
        quantity = quantity if quantity else Decimal(1)
        unit = given_amount / quantity
    if quantity is None:
        quantity = Decimal(1) if unit is not None else Decimal(0)
    unit = (unit or Decimal(0)).quantize(unit_places, ROUND_HALF_UP)
    quantity = quantity.quantize(FOUR_DP, ROUND_HALF_UP)
    if quantity < 0:
        raise ValueError(NEGATIVE_QUANTITY.format(quantity=quantity))
    figures = {"Quantity": quantity, "UnitAmount": unit}

    gross = quantity * unit
    if raw.get("DiscountRate") is not None and raw.get("DiscountAmount") is not None:
        raise ValueError("Only one of DiscountRate or DiscountAmount can be specified.")  # guessed
    if raw.get("DiscountRate") is not None:
        rate = to_decimal(raw["DiscountRate"], "DiscountRate").quantize(CENT, ROUND_HALF_UP)
        figures["DiscountRate"] = rate
        amount = round_money(gross * (HUNDRED - rate) / HUNDRED)
    elif raw.get("DiscountAmount") is not None:
        discount = round_money(to_decimal(raw["DiscountAmount"], "DiscountAmount"))
        figures["DiscountAmount"] = discount
        amount = round_money(gross - discount)
    else:
        amount = round_money(gross)
    if given_amount is not None and round_money(given_amount) != amount:
        raise ValueError(LINE_AMOUNT_MISMATCH.format(given=round_money(given_amount), expected=amount))
    figures["LineAmount"] = amount
    return figures


def _line_account(org: Organisation, raw: dict, status: str, errors: list[str]) -> dict | None:
    code = _text(raw.get("AccountCode"))
    account_id = _text(raw.get("AccountID")).lower()
    if not code and not account_id:
        if status not in ("DRAFT", "DELETED"):
            errors.append(ACCOUNT_REQUIRED)
        return None
    account = org.accounts.get(account_id) if account_id else org.account_by_code(code)
    label = code or account_id
    if account is None or account["Type"] == "BANK" or account.get("SystemAccount"):
        errors.append(ACCOUNT_INVALID.format(code=label))
        return None
    if account["Status"] != "ACTIVE":
        errors.append(ACCOUNT_ARCHIVED.format(code=label))
        return None
    return account


def _line_tax(
    raw: dict, line_amount: Decimal, rate: Decimal, amount_types: str, errors: list[str]
) -> Decimal:
    """Tax per line, rounded per line (ROUND_HALF_UP); a TaxAmount sent by the client overrides it,
    as the spec allows ("This value can be overriden if the calculated <TaxAmount> is not correct")."""
    if amount_types == "NoTax":
        return Decimal("0.00")
    if raw.get("TaxAmount") is not None:
        try:
            return round_money(to_decimal(raw["TaxAmount"], "TaxAmount"))
        except ValueError as error:
            errors.append(str(error))
    if amount_types == "Inclusive":
        return round_money(line_amount * rate / (HUNDRED + rate))
    return round_money(line_amount * rate / HUNDRED)


def _totals(lines: list[dict], amount_types: str) -> dict:
    priced = [line for line in lines if "LineAmount" in line]
    line_sum = sum((line["LineAmount"] for line in priced), Decimal("0.00"))
    tax = sum((line.get("TaxAmount", Decimal(0)) for line in priced), Decimal("0.00"))
    discount = sum(
        (round_money(line["Quantity"] * line["UnitAmount"]) - line["LineAmount"] for line in priced
         if "DiscountRate" in line or "DiscountAmount" in line),
        Decimal("0.00"),
    )  # fmt: skip
    if amount_types == "Inclusive":
        sub_total, total = line_sum - tax, line_sum
    else:
        sub_total, total = line_sum, line_sum + tax
    totals = {"SubTotal": sub_total, "TotalTax": tax, "Total": total}
    if discount:
        totals["TotalDiscount"] = discount
    return totals


def amount_paid(org: Organisation, invoice: dict) -> Decimal:
    return sum((p["Amount"] for p in org.live_payments(invoice["InvoiceID"])), Decimal("0.00"))


def amount_credited(org: Organisation, invoice: dict) -> Decimal:
    return sum((a["Amount"] for a in org.allocations_to_invoice(invoice["InvoiceID"])), Decimal("0.00"))


def amount_due(org: Organisation, invoice: dict) -> Decimal:
    return invoice["Total"] - amount_paid(org, invoice) - amount_credited(org, invoice)


def remaining_credit(org: Organisation, credit_note: dict) -> Decimal:
    """Total less what was allocated to invoices and what was refunded (docs §8b)."""
    note_id = credit_note["CreditNoteID"]
    refunded = sum((p["Amount"] for p in org.live_payments(note_id)), Decimal("0.00"))
    allocated = sum((a["Amount"] for a in org.allocations_of_credit_note(note_id)), Decimal("0.00"))
    return credit_note["Total"] - refunded - allocated


def outstanding(org: Organisation, kind: DocumentKind, document: dict) -> Decimal:
    """What a payment may still take: an invoice's AmountDue, a credit note's RemainingCredit."""
    return amount_due(org, document) if kind is INVOICE else remaining_credit(org, document)


def _settle(org: Organisation, kind: DocumentKind, document: dict, *, on: date | None, now: datetime) -> None:
    """PAID once nothing is outstanding, AUTHORISED again once money is taken off; UpdatedDateUTC moves on
    every change of what is applied to it."""
    left = outstanding(org, kind, document)
    if left == 0 and document["Status"] == "AUTHORISED":
        document["Status"] = "PAID"
        document["FullyPaidOnDate"] = on or now.date()
    elif left > 0 and document["Status"] == "PAID":
        document["Status"] = "AUTHORISED"
        document.pop("FullyPaidOnDate", None)
    document["UpdatedDateUTC"] = now


# ---------------------------------------------------------------- payments and refunds

PAYMENT_TYPES = {
    "ACCREC": "ACCRECPAYMENT",
    "ACCPAY": "ACCPAYPAYMENT",
    "ACCRECCREDIT": "ARCREDITPAYMENT",
    "ACCPAYCREDIT": "APCREDITPAYMENT",
}


def create_payment(org: Organisation, element: dict, *, now: datetime) -> dict:
    """Apply one payment to an AUTHORISED invoice, or (a "CreditNote" instead of an "Invoice") refund money
    from an AUTHORISED credit note; paying off what is outstanding turns the document PAID."""
    if element.get("PaymentID") and str(element["PaymentID"]).lower() in org.payments:
        raise Rejected([PAYMENTS_IMMUTABLE])
    errors: list[str] = []
    kind, document = _payment_document(org, element, errors)
    if document is not None and document["Status"] != "AUTHORISED":
        errors.append(PAYMENT_NOT_AUTHORISED)
    account = _payment_account(org, element, errors)

    amount = None
    try:
        amount = round_money(to_decimal(element.get("Amount"), "Amount"))
    except ValueError as error:
        errors.append(str(error))
    if amount is not None and amount <= 0:
        errors.append(PAYMENT_AMOUNT_NOT_POSITIVE)
    elif amount is not None and document is not None and amount > outstanding(org, kind, document):
        errors.append(PAYMENT_EXCEEDS)
    paid_on = _element_date(element, now, errors)
    if errors:
        raise Rejected(errors)

    payment = {
        "PaymentID": new_id(),
        kind.id_field: document[kind.id_field],
        "AccountID": account["AccountID"],
        "Date": paid_on,
        "Amount": amount,
        "BankAmount": amount,
        "CurrencyRate": Decimal("1.000000"),
        "Reference": element.get("Reference") or "",
        "IsReconciled": bool(element.get("IsReconciled", False)),
        "Status": "AUTHORISED",
        "PaymentType": PAYMENT_TYPES[document["Type"]],
        "UpdatedDateUTC": now,
    }
    org.payments[payment["PaymentID"]] = payment
    org.remember("payments", payment)
    _settle(org, kind, document, on=paid_on, now=now)
    return payment


def _element_date(element: dict, now: datetime, errors: list[str]) -> date:
    if not element.get("Date"):
        return now.date()
    try:
        return parse_date(element["Date"])
    except ValueError as error:
        errors.append(str(error))
        return now.date()


def _reference(element: dict, key: str) -> dict:
    ref = element.get(key)
    return ref if isinstance(ref, dict) else {}


def _payment_document(org: Organisation, element: dict, errors: list[str]) -> tuple[DocumentKind, dict | None]:
    """The invoice a payment is for, or the credit note a refund is paid from."""
    invoice_ref, note_ref = _reference(element, "Invoice"), _reference(element, "CreditNote")
    wants_invoice = bool(invoice_ref.get("InvoiceID") or _text(invoice_ref.get("InvoiceNumber"))
                         or _text(element.get("InvoiceNumber")))  # fmt: skip
    note_number = _text(note_ref.get("CreditNoteNumber")) or _text(element.get("CreditNoteNumber"))
    if note_ref.get("CreditNoteID") or note_number:
        if wants_invoice:
            errors.append(PAYMENT_TWO_DOCUMENTS)
            return CREDIT_NOTE, None
        if note_ref.get("CreditNoteID"):
            note = org.credit_notes.get(str(note_ref["CreditNoteID"]).lower())
        else:
            note = org.credit_note_by_ref(note_number)
        if note is None:
            errors.append(CREDIT_NOTE_NOT_FOUND)
        return CREDIT_NOTE, note
    invoice = _invoice_by_reference(org, invoice_ref, element)
    if invoice is None:
        errors.append(INVOICE_NOT_FOUND)
    return INVOICE, invoice


def _invoice_by_reference(org: Organisation, ref: dict, element: dict) -> dict | None:
    if ref.get("InvoiceID"):
        return org.invoices.get(str(ref["InvoiceID"]).lower())
    number = _text(ref.get("InvoiceNumber")) or _text(element.get("InvoiceNumber"))
    return org.invoice_by_ref(number) if number else None


def _payment_account(org: Organisation, element: dict, errors: list[str]) -> dict | None:
    ref = element.get("Account") if isinstance(element.get("Account"), dict) else {}
    account_id = _text(ref.get("AccountID")).lower()
    code = _text(ref.get("Code")) or _text(element.get("Code"))
    if not account_id and not code:
        errors.append(PAYMENT_ACCOUNT_REQUIRED)
        return None
    account = org.accounts.get(account_id) if account_id else org.account_by_code(code)
    payable = account is not None and (account["Type"] == "BANK" or account["EnablePaymentsToAccount"])
    if not payable or account["Status"] != "ACTIVE":
        errors.append(PAYMENT_ACCOUNT_INVALID)
        return None
    return account


def payment_document(org: Organisation, payment: dict) -> tuple[DocumentKind, dict]:
    """The invoice a payment is on, or the credit note a refund was paid from."""
    if payment.get("CreditNoteID"):
        return CREDIT_NOTE, org.credit_notes[payment["CreditNoteID"]]
    return INVOICE, org.invoices[payment["InvoiceID"]]


def delete_payment(org: Organisation, payment: dict, element: dict, *, now: datetime) -> dict:
    """The only change Xero allows to a payment: Status DELETED. It reopens the invoice (a deleted refund
    gives the credit note its credit back)."""
    if _text(element.get("Status")).upper() != "DELETED":
        raise Rejected([PAYMENTS_IMMUTABLE])
    if payment["Status"] == "DELETED":
        raise Rejected([PAYMENT_ALREADY_DELETED])
    payment["Status"] = "DELETED"
    payment["UpdatedDateUTC"] = now
    kind, document = payment_document(org, payment)
    _settle(org, kind, document, on=None, now=now)
    return payment


# ---------------------------------------------------------------- allocations


def allocate_credit_note(org: Organisation, credit_note: dict, element: dict, *, now: datetime) -> dict:
    """Apply part of an AUTHORISED credit note to an invoice of the same contact and currency: at most the
    credit note's RemainingCredit and the invoice's AmountDue (docs §8b). Both turn PAID at zero."""
    errors: list[str] = []
    if credit_note["Status"] not in ("AUTHORISED", "PAID"):
        # A PAID one has no credit left: that is refused below as more than is outstanding.
        errors.append(ALLOCATION_NOT_AUTHORISED)
    invoice = _invoice_by_reference(org, _reference(element, "Invoice"), {})
    if invoice is None:
        errors.append(INVOICE_NOT_FOUND)
    else:
        if invoice["Type"] != {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}[credit_note["Type"]]:
            errors.append(ALLOCATION_WRONG_TYPE)
        if invoice["Status"] == "PAID":
            errors.append(ALLOCATION_INVOICE_PAID)
        elif invoice["Status"] != "AUTHORISED":
            errors.append(ALLOCATION_INVOICE_NOT_AUTHORISED)
        if invoice["ContactID"] != credit_note["ContactID"]:
            errors.append(ALLOCATION_OTHER_CONTACT)
        if invoice["CurrencyCode"] != credit_note["CurrencyCode"]:
            errors.append(ALLOCATION_OTHER_CURRENCY)
    amount = None
    try:
        amount = round_money(to_decimal(element.get("Amount"), "Amount"))
    except ValueError as error:
        errors.append(str(error))
    if amount is not None and amount <= 0:
        errors.append(ALLOCATION_AMOUNT_NOT_POSITIVE)
    elif amount is not None and (
        amount > remaining_credit(org, credit_note) or (invoice is not None and amount > amount_due(org, invoice))
    ):
        errors.append(ALLOCATION_EXCEEDS)
    # The spec makes Date required on an allocation (Allocation.required: Amount, Invoice, Date).
    if not element.get("Date"):
        errors.append(ALLOCATION_DATE_REQUIRED)
    allocated_on = _element_date(element, now, errors)
    if errors:
        raise Rejected(errors)

    allocation = {
        "AllocationID": new_id(),
        "CreditNoteID": credit_note["CreditNoteID"],
        "InvoiceID": invoice["InvoiceID"],
        "Amount": amount,
        "Date": allocated_on,
    }
    org.allocations[allocation["AllocationID"]] = allocation
    org.remember("allocations", allocation)
    _settle(org, CREDIT_NOTE, credit_note, on=allocated_on, now=now)
    _settle(org, INVOICE, invoice, on=allocated_on, now=now)
    return allocation


def delete_allocation(org: Organisation, allocation: dict, *, now: datetime) -> dict:
    """Take an allocation off: the credit comes back to the credit note and the invoice owes it again."""
    del org.allocations[allocation["AllocationID"]]
    _settle(org, CREDIT_NOTE, org.credit_notes[allocation["CreditNoteID"]], on=None, now=now)
    _settle(org, INVOICE, org.invoices[allocation["InvoiceID"]], on=None, now=now)
    return allocation
