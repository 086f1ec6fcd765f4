"""Stored records -> the JSON objects Xero returns (field names and shapes from xero_accounting.yaml)."""

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from .rules import CENT, INVOICE, DocumentKind
from .serialize import date_string, envelope_datetime, ms_date, ms_datetime
from .state import Organisation

ZERO = Decimal("0.00")
# summaryOnly=true keeps only these (Xero's "lightweight" contact).
CONTACT_SUMMARY_FIELDS = (
    "ContactID", "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName",
    "EmailAddress", "UpdatedDateUTC", "IsSupplier", "IsCustomer", "HasValidationErrors",
)  # fmt: skip
INVOICE_DETAIL_FIELDS = ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments")
# Documents that can still owe or hold money; a VOIDED or DELETED one shows 0 due (or 0 credit left).
OPEN_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID")


def envelope(collection: str, items: list[dict], *, provider: str, now: datetime, pagination=None) -> dict:
    body = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": provider,
        "DateTimeUTC": envelope_datetime(now),
    }
    if pagination is not None:
        body["pagination"] = pagination
    body[collection] = items
    return body


def contact_json(contact: dict, *, summary: bool = False) -> dict:
    body = dict(contact)
    body["UpdatedDateUTC"] = ms_datetime(contact["UpdatedDateUTC"])
    for key in ("Addresses", "Phones", "ContactGroups", "ContactPersons"):
        body.setdefault(key, [])
    body.update(HasAttachments=False, HasValidationErrors=False)
    if summary:
        return {key: body[key] for key in CONTACT_SUMMARY_FIELDS if key in body}
    return body


def _contact_ref(contact: dict) -> dict:
    """The contact as embedded in an invoice."""
    ref = {"ContactID": contact["ContactID"]}
    for key in ("ContactNumber", "ContactStatus", "Name", "EmailAddress"):
        if contact.get(key):
            ref[key] = contact[key]
    ref.update(
        {
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasValidationErrors": False,
        }
    )
    return ref


def _line_json(line: dict, unitdp: int) -> dict:
    body = dict(line)
    if "UnitAmount" in body and unitdp != 4:
        body["UnitAmount"] = body["UnitAmount"].quantize(CENT, ROUND_HALF_UP)
    return body


def document_json(org: Organisation, kind: DocumentKind, document: dict) -> dict:
    """An invoice or a credit note, as `kind` says, as GET /Invoices/{id} or /CreditNotes/{id} shows it."""
    show = invoice_json if kind is INVOICE else credit_note_json
    return show(org, document)


def invoice_json(
    org: Organisation,
    invoice: dict,
    *,
    payments: list[dict] | None = None,
    line_items: bool = True,
    unitdp: int = 2,
    summary: bool = False,
) -> dict:
    """``payments`` are the invoice's payments if the caller already grouped them (list endpoints)."""
    if payments is None:
        payments = org.live_payments(invoice["InvoiceID"])
    live = [p for p in payments if p["Status"] != "DELETED"]
    paid = sum((p["Amount"] for p in live), ZERO)
    allocations = org.allocations_to_invoice(invoice["InvoiceID"])
    credited = sum((a["Amount"] for a in allocations), ZERO)
    open_for_payment = invoice["Status"] in OPEN_STATUSES
    body = {
        "Type": invoice["Type"],
        "InvoiceID": invoice["InvoiceID"],
        "InvoiceNumber": invoice.get("InvoiceNumber", ""),
        "Reference": invoice.get("Reference", ""),
        "Payments": [_payment_summary(p) for p in live],
        "CreditNotes": [_applied_credit_note(org, a) for a in allocations],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": invoice["Total"] - paid - credited if open_for_payment else ZERO,
        "AmountPaid": paid,
        "AmountCredited": credited,
        "CurrencyRate": Decimal("1.000000"),
        "IsDiscounted": "TotalDiscount" in invoice,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": _contact_ref(org.contacts[invoice["ContactID"]]),
        "DateString": date_string(invoice["Date"]),
        "Date": ms_date(invoice["Date"]),
        "Status": invoice["Status"],
        "LineAmountTypes": invoice["LineAmountTypes"],
        "LineItems": [_line_json(line, unitdp) for line in invoice["LineItems"]],
        "SubTotal": invoice["SubTotal"],
        "TotalTax": invoice["TotalTax"],
        "Total": invoice["Total"],
        "UpdatedDateUTC": ms_datetime(invoice["UpdatedDateUTC"]),
        "CurrencyCode": invoice["CurrencyCode"],
        "SentToContact": invoice.get("SentToContact", False),
    }
    if invoice.get("DueDate"):
        body["DueDateString"] = date_string(invoice["DueDate"])
        body["DueDate"] = ms_date(invoice["DueDate"])
    for key in ("ExpectedPaymentDate", "PlannedPaymentDate", "FullyPaidOnDate"):
        if invoice.get(key):
            body[key] = ms_date(invoice[key])
    for key in ("TotalDiscount", "BrandingThemeID", "Url"):
        if invoice.get(key) is not None:
            body[key] = invoice[key]
    if summary or not line_items:
        # Lists without paging omit line items, as Xero's do; summaryOnly drops the other details too.
        for key in INVOICE_DETAIL_FIELDS if summary else ("LineItems",):
            body.pop(key)
    return body


def _applied_credit_note(org: Organisation, allocation: dict) -> dict:
    """One allocation as an invoice's CreditNotes[] shows it: the credit note and the AppliedAmount."""
    note = org.credit_notes[allocation["CreditNoteID"]]
    return {
        "CreditNoteID": note["CreditNoteID"],
        "CreditNoteNumber": note.get("CreditNoteNumber", ""),
        "Type": note["Type"],
        "AppliedAmount": allocation["Amount"],
        "DateString": date_string(note["Date"]),
        "Date": ms_date(note["Date"]),
        "Total": note["Total"],
        "HasErrors": False,
        "LineItems": [],
    }


def credit_note_json(
    org: Organisation,
    note: dict,
    *,
    payments: list[dict] | None = None,
    line_items: bool = True,
    unitdp: int = 2,
) -> dict:
    """``payments`` are the credit note's refunds if the caller already grouped them (list endpoints)."""
    if payments is None:
        payments = org.live_payments(note["CreditNoteID"])
    refunds = [p for p in payments if p["Status"] != "DELETED"]
    allocations = org.allocations_of_credit_note(note["CreditNoteID"])
    used = sum((p["Amount"] for p in refunds), ZERO) + sum((a["Amount"] for a in allocations), ZERO)
    body = {
        "Type": note["Type"],
        "CreditNoteID": note["CreditNoteID"],
        "CreditNoteNumber": note.get("CreditNoteNumber", ""),
        "Reference": note.get("Reference", ""),
        "Payments": [_payment_summary(p) for p in refunds],
        "Allocations": [_allocation_summary(org, a) for a in allocations],
        "RemainingCredit": note["Total"] - used if note["Status"] in OPEN_STATUSES else ZERO,
        "CurrencyRate": Decimal("1.000000"),
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": _contact_ref(org.contacts[note["ContactID"]]),
        "DateString": date_string(note["Date"]),
        "Date": ms_date(note["Date"]),
        "Status": note["Status"],
        "LineAmountTypes": note["LineAmountTypes"],
        "LineItems": [_line_json(line, unitdp) for line in note["LineItems"]],
        "SubTotal": note["SubTotal"],
        "TotalTax": note["TotalTax"],
        "Total": note["Total"],
        "UpdatedDateUTC": ms_datetime(note["UpdatedDateUTC"]),
        "CurrencyCode": note["CurrencyCode"],
        "SentToContact": note.get("SentToContact", False),
    }
    for key in ("DueDate", "FullyPaidOnDate"):
        if note.get(key):
            body[key] = ms_date(note[key])
    if note.get("BrandingThemeID") is not None:
        body["BrandingThemeID"] = note["BrandingThemeID"]
    if not line_items:
        body.pop("LineItems")
    return body


def _allocation_summary(org: Organisation, allocation: dict) -> dict:
    """One allocation as a credit note's Allocations[] shows it."""
    invoice = org.invoices[allocation["InvoiceID"]]
    return {
        "AllocationID": allocation["AllocationID"],
        "Amount": allocation["Amount"],
        "Date": ms_date(allocation["Date"]),
        "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber", "")},
    }


def allocation_json(org: Organisation, allocation: dict, *, deleted: bool = False) -> dict:
    """An allocation as PUT /CreditNotes/{id}/Allocations answers it (and DELETE, with IsDeleted)."""
    note = org.credit_notes[allocation["CreditNoteID"]]
    body = _allocation_summary(org, allocation)
    body["CreditNote"] = {
        "CreditNoteID": note["CreditNoteID"],
        "CreditNoteNumber": note.get("CreditNoteNumber", ""),
        "Type": note["Type"],
    }
    if deleted:
        body["IsDeleted"] = True
    return body


def _payment_summary(payment: dict) -> dict:
    return {
        "PaymentID": payment["PaymentID"],
        "Date": ms_date(payment["Date"]),
        "Amount": payment["Amount"],
        "Reference": payment["Reference"],
        "CurrencyRate": payment["CurrencyRate"],
        "HasAccount": True,
        "HasValidationErrors": False,
    }


def payment_json(org: Organisation, payment: dict) -> dict:
    """A payment on an invoice, or a refund from a credit note. A refund names its credit note twice: under
    ``Invoice`` (Type ACCRECCREDIT, InvoiceID = the CreditNoteID, InvoiceNumber = its number), as the
    spec's own GET /Payments example and xero-ruby #48 show Xero doing (docs §8b), and under
    ``CreditNote``."""
    refund = bool(payment.get("CreditNoteID"))
    document = org.credit_notes[payment["CreditNoteID"]] if refund else org.invoices[payment["InvoiceID"]]
    number = document.get("CreditNoteNumber" if refund else "InvoiceNumber", "")
    account = org.accounts[payment["AccountID"]]
    contact = org.contacts[document["ContactID"]]
    body = {
        "PaymentID": payment["PaymentID"],
        "Date": ms_date(payment["Date"]),
        "BankAmount": payment["BankAmount"],
        "Amount": payment["Amount"],
        "Reference": payment["Reference"],
        "CurrencyRate": payment["CurrencyRate"],
        "PaymentType": payment["PaymentType"],
        "Status": payment["Status"],
        "UpdatedDateUTC": ms_datetime(payment["UpdatedDateUTC"]),
        "HasAccount": True,
        "IsReconciled": payment["IsReconciled"],
        "Account": {"AccountID": account["AccountID"], "Code": account["Code"], "Name": account["Name"]},
        "Invoice": {
            "Type": document["Type"],
            "InvoiceID": document["CreditNoteID" if refund else "InvoiceID"],
            "InvoiceNumber": number,
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "CurrencyCode": document["CurrencyCode"],
        },
        "HasValidationErrors": False,
    }
    if refund:
        body["CreditNote"] = {
            "Type": document["Type"],
            "CreditNoteID": document["CreditNoteID"],
            "CreditNoteNumber": number,
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "CurrencyCode": document["CurrencyCode"],
        }
    return body


def account_json(account: dict) -> dict:
    return {**account, "HasAttachments": False, "UpdatedDateUTC": ms_datetime(account["UpdatedDateUTC"])}


def tax_rate_json(rate: dict) -> dict:
    return dict(rate)


def organisation_json(org: Organisation) -> dict:
    return {
        "OrganisationID": org.tenant_id,
        "APIKey": "",
        "Name": org.name,
        "LegalName": org.name,
        "PaysTax": True,
        "Version": org.country_code,
        "OrganisationType": "COMPANY",
        "BaseCurrency": org.base_currency,
        "CountryCode": org.country_code,
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "PAYMENTS",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_datetime(org.created),
        "OrganisationEntityType": "COMPANY",
        "Timezone": "NEWZEALANDSTANDARDTIME",
        "ShortCode": "!" + org.tenant_id[:5],
        "Edition": "BUSINESS",
        "Class": "STANDARD",
        "PaymentTerms": {"Sales": {"Day": org.sales_due_day, "Type": "OFFOLLOWINGMONTH"}},
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
    }
