"""Pure translations between the shop's records and Xero's JSON. No database, no HTTP: tested alone.

Payloads are dicts in Xero's own field names, money as Decimal quantised to what Xero stores, dates as
YYYY-MM-DD, and no None values (xero-python cannot serialise None).
"""

import datetime
import hashlib
import json
import re
from decimal import Decimal

from ecommerce import totals
from ecommerce.models import Contact, Receipt, Refund, RefundLine, Sale, SaleLine

CONTACT_NUMBER_PREFIX = "WEB-C"
RECEIPT_KEY_PREFIX = "WEB-R"
FOUR_PLACES = Decimal("0.0001")
LINE_AMOUNT_TYPES = {
    totals.EXCLUSIVE: "Exclusive",
    totals.INCLUSIVE: "Inclusive",
    totals.NO_TAX: "NoTax",
}
MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")

# The model fields each to-Xero payload is built from: read by its mapper, or by the push to work out one
# of the mapper's arguments (noted at the field). xero_sync.receivers records a save for Xero only when one
# of these changed; tests/xero_sync/test_receivers.py holds these lists to the payloads.
CONTACT_FIELDS_SENT = (
    "first_name", "last_name", "email", "phone", "address_line1", "address_line2", "city", "region",
    "postcode", "country",
    "company_name",  # in `name`: the push names a contact by its display name
)
SALE_FIELDS_SENT = (
    "number", "date", "due_date", "line_amount_type", "currency", "reference",
    "contact_id",  # in `contact_xero_id`
)
SALE_LINE_FIELDS_SENT = (
    "kind", "description", "quantity", "unit_amount", "discount_rate", "tax_rate", "tax_code", "account_code",
    "sale_id", "position",  # in `lines`: the sale's lines, in position order
)
# A refund is never edited once recorded (ecommerce.services): what decides its payloads is set at creation,
# bar the payment deletion staff clear to send it again.
REFUND_FIELDS_SENT = ("removed_in_books_at",)
RECEIPT_FIELDS_SENT = (
    "date", "amount", "reference",
    "sale_id",  # in `invoice_xero_id`
    "payment_method_id",  # in `account_code`: the account its payment method pays into
)


class MappingError(ValueError):
    """The record cannot be expressed in Xero as configured; the message says what to fix."""


def contact_number(contact_id: int) -> str:
    return f"{CONTACT_NUMBER_PREFIX}{contact_id:06d}"


def receipt_key(receipt_id: int) -> str:
    return f"{RECEIPT_KEY_PREFIX}{receipt_id:06d}"


def refund_reference(refund: Refund) -> str:
    """The Reference of a refund's payment in Xero: its credit note's number leads back to the refund."""
    return f"Refund {refund.number}"


def refund_number_from_reference(reference: str | None) -> str | None:
    parts = (reference or "").split()
    return parts[1] if len(parts) >= 2 and parts[0] == "Refund" and parts[1].startswith("CN-") else None


def receipt_id_from_reference(reference: str | None) -> int | None:
    """The receipt a Xero payment came from, if our push made it (its Reference starts with our key)."""
    first = (reference or "").split(" ", 1)[0]
    if first.startswith(RECEIPT_KEY_PREFIX) and first[len(RECEIPT_KEY_PREFIX):].isdigit():
        return int(first[len(RECEIPT_KEY_PREFIX):])
    return None


XERO_NAME_MAX = 255


def _named_with(base: str, tag: str) -> str | None:
    """`base (tag)` within Xero's 255 characters: the base is cut, never the tag that tells it apart."""
    suffix = f" ({tag})"
    room = XERO_NAME_MAX - len(suffix)
    return f"{base[:room].rstrip()}{suffix}" if room > 0 else None


def distinguishable_name(contact: Contact) -> str:
    """The Xero name for a contact whose plain name another active Xero contact already has."""
    return xero_name_candidates(contact)[1]


def xero_name_candidates(contact: Contact) -> list[str]:
    """The names a contact may have in Xero, best first: its own; with its email; with our key (unique
    among the website's contacts). Each fits Xero's 255 characters."""
    plain = contact.display_name[:XERO_NAME_MAX]
    tagged = [_named_with(contact.display_name, tag) for tag in (contact.email, contact_number(contact.pk)) if tag]
    return [plain] + list(dict.fromkeys(name for name in tagged if name))


def _compact(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if value not in (None, "", [], {})}


def contact_payload(contact: Contact, *, name: str, xero_id: str | None = None) -> dict:
    address = _compact({
        "AddressType": "POBOX",
        "AddressLine1": contact.address_line1, "AddressLine2": contact.address_line2, "City": contact.city,
        "Region": contact.region, "PostalCode": contact.postcode, "Country": contact.country,
    })
    return _compact({
        "ContactID": xero_id and str(xero_id),
        "Name": name[:255],
        "ContactNumber": contact_number(contact.pk),
        "FirstName": contact.first_name[:255],
        "LastName": contact.last_name[:255],
        "EmailAddress": contact.email,
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": contact.phone[:50]}] if contact.phone else [],
        "Addresses": [address] if len(address) > 1 else [],
    })


def _line_payload(
    line: SaleLine | RefundLine, line_amount_type: str, *, sales_account: str, shipping_account: str,
    tax_types: dict[str, str], tax_rates: dict[str, Decimal],
) -> dict:
    account = line.account_code or (shipping_account if line.kind == SaleLine.Kind.SHIPPING else "") or sales_account
    if not account:
        what = "shipping" if line.kind == SaleLine.Kind.SHIPPING else "sales"
        raise MappingError(f"Line '{line.description}' has no account: set the default {what} account on the "
                           "Xero settings page.")
    tax_type = None
    if line_amount_type != totals.NO_TAX:
        tax_type = tax_types.get(line.tax_code)
        if not tax_type:
            code = f"tax code '{line.tax_code}'" if line.tax_code else "no tax code"
            raise MappingError(f"Line '{line.description}' has {code}, which is not mapped "
                               "to a Xero tax type: map it on the Xero settings page.")
        xero_rate = tax_rates.get(tax_type)
        if xero_rate is not None and xero_rate != line.tax_rate:
            raise MappingError(f"Line '{line.description}' charges {line.tax_rate.normalize()}% tax but Xero's "
                               f"{tax_type} is {xero_rate.normalize()}%: the totals would differ.")
    figures = totals.line_figures(
        quantity=line.quantity, unit_amount=line.unit_amount, discount_rate=line.discount_rate,
        tax_rate=line.tax_rate, line_amount_type=line_amount_type,
    )
    return _compact({
        "Description": line.description,
        "Quantity": line.quantity.quantize(FOUR_PLACES),
        "UnitAmount": line.unit_amount.quantize(FOUR_PLACES),
        "DiscountRate": line.discount_rate if line.discount_rate else None,
        "AccountCode": account,
        "TaxType": tax_type,
        "LineAmount": figures.line_amount,
    })


def invoice_payload(
    sale: Sale,
    lines: list[SaleLine],
    *,
    contact_xero_id: str,
    sales_account: str,
    shipping_account: str,
    tax_types: dict[str, str],
    tax_rates: dict[str, Decimal] | None = None,
    xero_id: str | None = None,
) -> dict:
    """A confirmed sale as an approved Xero sales invoice, numbered with the sale number."""
    if not lines:
        raise MappingError(f"{sale.number} has no lines.")
    return _compact({
        "InvoiceID": xero_id and str(xero_id),
        "Type": "ACCREC",
        "InvoiceNumber": sale.number,
        "Contact": {"ContactID": str(contact_xero_id)},
        "Date": sale.date.isoformat(),
        # Xero needs a due date on an approved invoice; without one the sale is due on the day.
        "DueDate": (sale.due_date or sale.date).isoformat(),
        "LineAmountTypes": LINE_AMOUNT_TYPES[sale.line_amount_type],
        # Approved when created. An update leaves the status to Xero: resending AUTHORISED to an invoice
        # that has since been paid would be refused, while its reference or dates may still change.
        "Status": None if xero_id else "AUTHORISED",
        "CurrencyCode": sale.currency,
        "Reference": sale.reference[:255],
        "LineItems": [
            _line_payload(line, sale.line_amount_type, sales_account=sales_account, shipping_account=shipping_account,
                          tax_types=tax_types, tax_rates=tax_rates or {})
            for line in lines
        ],
    })


def void_payload(sale: Sale, *, xero_id: str) -> dict:
    """A cancelled sale's invoice, voided: Xero keeps it, marked VOIDED (it never deletes an approved one)."""
    return {"InvoiceID": str(xero_id), "InvoiceNumber": sale.number, "Status": "VOIDED"}


def credit_note_payload(
    refund: Refund,
    lines: list[RefundLine],
    *,
    sale: Sale,
    contact_xero_id: str,
    sales_account: str,
    shipping_account: str,
    tax_types: dict[str, str],
    tax_rates: dict[str, Decimal] | None = None,
) -> dict:
    """A refund as an approved sales credit note for exactly its lines, numbered with the refund's number."""
    if not lines:
        raise MappingError(f"{refund.number} has no lines.")
    return _compact({
        "Type": "ACCRECCREDIT",
        "CreditNoteNumber": refund.number,
        "Contact": {"ContactID": str(contact_xero_id)},
        "Date": refund.date.isoformat(),
        "LineAmountTypes": LINE_AMOUNT_TYPES[refund.line_amount_type],
        "Status": "AUTHORISED",
        "CurrencyCode": sale.currency,
        "Reference": f"{sale.number} {refund.reason}".strip()[:255],
        "LineItems": [
            _line_payload(line, refund.line_amount_type, sales_account=sales_account,
                          shipping_account=shipping_account, tax_types=tax_types, tax_rates=tax_rates or {})
            for line in lines
        ],
    })


def allocation_payload(refund: Refund, *, invoice_xero_id: str) -> dict:
    """The part of a refund's credit taken off its sale's invoice."""
    return {"Invoice": {"InvoiceID": str(invoice_xero_id)}, "Amount": refund.amount_allocated,
            "Date": refund.date.isoformat()}


def refund_payment_payload(refund: Refund, *, credit_note_xero_id: str, account_code: str) -> dict:
    """The money paid back, as a payment on the refund's credit note from the method's account."""
    return {
        "CreditNote": {"CreditNoteID": str(credit_note_xero_id)},
        "Account": {"Code": account_code},
        "Date": refund.date.isoformat(),
        "Amount": refund.amount_refunded,
        "Reference": refund_reference(refund),
    }


def payment_payload(receipt: Receipt, *, invoice_xero_id: str, account_code: str) -> dict:
    reference = f"{receipt_key(receipt.pk)} {receipt.reference}".strip()[:255]
    return {
        "Invoice": {"InvoiceID": str(invoice_xero_id)},
        "Account": {"Code": account_code},
        "Date": receipt.date.isoformat(),
        "Amount": receipt.amount,
        "Reference": reference,
    }


def payload_hash(payload: dict) -> str:
    """A stable fingerprint of a payload, without the Xero id and the create-only status (so adopting an
    id, or moving from create to update, is not a change); a void is a change, so VOIDED counts."""
    content = {key: value for key, value in payload.items()
               if key not in {"ContactID", "InvoiceID"} and not (key == "Status" and value == "AUTHORISED")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def parse_xero_datetime(value: str | None) -> datetime.datetime | None:
    """Xero's `/Date(1439434356790+0000)/` (or an ISO string) as an aware UTC datetime."""
    if not value:
        return None
    match = MS_DATE.fullmatch(value.strip())
    if match:
        return datetime.datetime.fromtimestamp(int(match.group(1)) / 1000, tz=datetime.UTC)
    parsed = datetime.datetime.fromisoformat(value)
    return parsed.astimezone(datetime.UTC) if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def validation_messages(element: dict) -> list[str]:
    return [problem.get("Message", "") for problem in element.get("ValidationErrors") or [] if problem.get("Message")]


# --- From Xero ----------------------------------------------------------------------------------------

XERO_LINE_AMOUNT_TYPES = {xero: ours for ours, xero in LINE_AMOUNT_TYPES.items()}
INVOICE_STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}


def _first(items: list[dict] | None, key: str, preferred: tuple[str, ...]) -> dict:
    items = [item for item in items or [] if item.get(key)]
    for kind in preferred:
        for item in items:
            if item.get("PhoneType", item.get("AddressType")) == kind:
                return item
    return items[0] if items else {}


def contact_fields_from_xero(row: dict, *, our_xero_name: str = "") -> dict:
    """Website contact fields from a Xero contact. A Xero name we gave it ourselves (to keep two people
    with one name apart) is not taken back as a company name."""
    first, last = (row.get("FirstName") or "").strip(), (row.get("LastName") or "").strip()
    name = (row.get("Name") or "").strip()
    person = " ".join(part for part in (first, last) if part)
    company = "" if name in (person, our_xero_name) else name
    phone = _first(row.get("Phones"), "PhoneNumber", ("DEFAULT", "MOBILE"))
    address = _first(row.get("Addresses"), "AddressLine1", ("POBOX", "STREET"))
    number = " ".join(part for part in (phone.get("PhoneCountryCode"), phone.get("PhoneAreaCode"),
                                        phone.get("PhoneNumber")) if part)
    return {
        "first_name": first, "last_name": last, "company_name": company,
        "email": (row.get("EmailAddress") or "").strip(), "phone": number,
        "address_line1": address.get("AddressLine1") or "", "address_line2": address.get("AddressLine2") or "",
        "city": address.get("City") or "", "region": address.get("Region") or "",
        "postcode": address.get("PostalCode") or "", "country": address.get("Country") or "",
    }


def _money(value) -> Decimal:
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _date(value) -> datetime.date | None:
    parsed = parse_xero_datetime(value) if value else None
    return parsed.date() if parsed else None


def _document_fields(row: dict, *, what: str, id_key: str, number_key: str) -> dict:
    """The fields an invoice and a credit note share, read alike; ValueError for what we cannot read."""
    status = row.get("Status")
    if status not in INVOICE_STATUSES:
        raise ValueError(f"unknown {what} status {status!r}")
    if not row.get(id_key):
        raise ValueError(f"the {what} has no {id_key}")
    updated = parse_xero_datetime(row.get("UpdatedDateUTC"))
    if updated is None:
        raise ValueError(f"the {what} has no UpdatedDateUTC")
    return {
        "number": (row.get(number_key) or "")[:255],
        "status": status,
        "date": _date(row.get("Date")),
        "currency": row.get("CurrencyCode") or "",
        "line_amount_type": XERO_LINE_AMOUNT_TYPES.get(row.get("LineAmountTypes"), totals.EXCLUSIVE),
        "subtotal": _money(row.get("SubTotal")),
        "total_tax": _money(row.get("TotalTax")),
        "total": _money(row.get("Total")),
        "reference": (row.get("Reference") or "")[:255],
        "updated_in_xero_at": updated,
    }


def invoice_fields_from_xero(row: dict) -> tuple[dict, list[dict]]:
    """Invoice fields and line fields from a Xero ACCREC invoice; ValueError for what we cannot read."""
    fields = {
        **_document_fields(row, what="invoice", id_key="InvoiceID", number_key="InvoiceNumber"),
        "due_date": _date(row.get("DueDate")),
        "amount_due": _money(row.get("AmountDue")),
        "amount_paid": _money(row.get("AmountPaid")),
        "amount_credited": _money(row.get("AmountCredited")),
    }
    lines = [
        {
            "position": position,
            "description": line.get("Description") or "",
            "quantity": Decimal(str(line.get("Quantity") or 0)),
            "unit_amount": Decimal(str(line.get("UnitAmount") or 0)),
            "discount_rate": Decimal(str(line.get("DiscountRate") or 0)),
            "account_code": line.get("AccountCode") or "",
            "tax_type": line.get("TaxType") or "",
            "item_code": line.get("ItemCode") or "",
            "tax_amount": _money(line.get("TaxAmount")),
            "line_amount": _money(line.get("LineAmount")),
        }
        for position, line in enumerate(row.get("LineItems") or [], start=1)
    ]
    return fields, lines


def payment_fields_from_xero(row: dict) -> dict:
    if not row.get("PaymentID"):
        raise ValueError("the payment has no PaymentID")
    updated = parse_xero_datetime(row.get("UpdatedDateUTC"))
    paid_on = _date(row.get("Date"))
    if updated is None or paid_on is None:
        raise ValueError("the payment has no Date or UpdatedDateUTC")
    return {
        "amount": _money(row.get("Amount")),
        "currency": (row.get("Invoice") or {}).get("CurrencyCode") or "",
        "date": paid_on,
        "reference": (row.get("Reference") or "")[:255],
        "status": "deleted" if row.get("Status") == "DELETED" else "active",
        "updated_in_xero_at": updated,
    }


def credit_note_fields_from_xero(row: dict) -> tuple[dict, list[dict]]:
    """Credit note fields, and its allocations to invoices, from a Xero ACCRECCREDIT credit note."""
    fields = {
        **_document_fields(row, what="credit note", id_key="CreditNoteID", number_key="CreditNoteNumber"),
        "remaining_credit": _money(row.get("RemainingCredit")),
    }
    allocations = [
        {"invoice_xero_id": (allocation.get("Invoice") or {}).get("InvoiceID"),
         "amount": _money(allocation.get("Amount")), "date": _date(allocation.get("Date"))}
        for allocation in row.get("Allocations") or []
        if not allocation.get("IsDeleted") and (allocation.get("Invoice") or {}).get("InvoiceID")
    ]
    return fields, allocations


def payment_credit_note_id(row: dict) -> str | None:
    """The credit note a pulled payment refunds, or None for a payment on an invoice. Xero may put the
    credit note under `CreditNote`, or (docs/xero-api.md 8b) under `Invoice` with Type ACCRECCREDIT."""
    credit_note = row.get("CreditNote") or {}
    if credit_note.get("CreditNoteID"):
        return str(credit_note["CreditNoteID"])
    invoice = row.get("Invoice") or {}
    if invoice.get("Type") == "ACCRECCREDIT" or row.get("PaymentType") == "ARCREDITPAYMENT":
        return str(invoice.get("InvoiceID") or invoice.get("CreditNoteID") or "") or None
    return None
