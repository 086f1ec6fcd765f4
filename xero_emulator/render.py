"""Stored records -> the JSON objects Xero returns (field names and shapes from xero_accounting.yaml)."""

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from .rules import CENT
from .serialize import date_string, envelope_datetime, ms_date, ms_datetime
from .state import Organisation

ZERO = Decimal("0.00")
# summaryOnly=true keeps only these (Xero's "lightweight" contact).
CONTACT_SUMMARY_FIELDS = (
    "ContactID", "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName",
    "EmailAddress", "UpdatedDateUTC", "IsSupplier", "IsCustomer", "HasValidationErrors",
)  # fmt: skip
INVOICE_DETAIL_FIELDS = ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments")


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
    open_for_payment = invoice["Status"] in ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID")
    body = {
        "Type": invoice["Type"],
        "InvoiceID": invoice["InvoiceID"],
        "InvoiceNumber": invoice.get("InvoiceNumber", ""),
        "Reference": invoice.get("Reference", ""),
        "Payments": [_payment_summary(p) for p in live],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": invoice["Total"] - paid if open_for_payment else ZERO,
        "AmountPaid": paid,
        "AmountCredited": ZERO,
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
    invoice = org.invoices[payment["InvoiceID"]]
    account = org.accounts[payment["AccountID"]]
    contact = org.contacts[invoice["ContactID"]]
    return {
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
            "Type": invoice["Type"],
            "InvoiceID": invoice["InvoiceID"],
            "InvoiceNumber": invoice.get("InvoiceNumber", ""),
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "CurrencyCode": invoice["CurrencyCode"],
        },
        "HasValidationErrors": False,
    }


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
