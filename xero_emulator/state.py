"""The data of one Xero organisation (tenant): contacts, invoices, credit notes and their allocations, payments
(refunds of credit notes among them), chart of accounts, tax rates.

Records are kept as dicts keyed by Xero's PascalCase field names, holding Python values (Decimal,
date, aware datetime); :mod:`xero_emulator.render` turns them into Xero's JSON. Figures that Xero
derives (an invoice's AmountPaid, AmountCredited, AmountDue, its Payments and CreditNotes lists; a credit
note's RemainingCredit) are not stored but computed from the payments and allocations, so they can never
disagree.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .serialize import from_storable, to_storable

NZ_GST = Decimal("15.0000")
ZERO_RATE = Decimal("0.0000")


def new_id() -> str:
    return str(uuid.uuid4())


# The lookups Xero makes on every save (is this name taken? which invoice has this number? what is paid on
# it?): index name -> (collection, id field, the lower-cased key Xero compares).
_INDEXED = {
    "contact_name": ("contacts", "ContactID", lambda contact: contact["Name"].strip().lower()),
    "contact_number": ("contacts", "ContactID", lambda contact: (contact.get("ContactNumber") or "").lower()),
    "invoice_number": ("invoices", "InvoiceID", lambda invoice: (invoice.get("InvoiceNumber") or "").lower()),
    "credit_note_number": (
        "credit_notes", "CreditNoteID", lambda note: (note.get("CreditNoteNumber") or "").lower()
    ),
    # A payment is on an invoice, or (a refund) on a credit note: IDs are unique across both.
    "payment_document": ("payments", "PaymentID", lambda payment: payment_document_id(payment)),
    "allocation_invoice": ("allocations", "AllocationID", lambda allocation: allocation["InvoiceID"]),
    "allocation_credit_note": ("allocations", "AllocationID", lambda allocation: allocation["CreditNoteID"]),
}
_COLLECTIONS = ("contacts", "invoices", "credit_notes", "payments", "allocations")


def payment_document_id(payment: dict) -> str:
    """The invoice a payment is on, or the credit note a refund is paid from."""
    return payment.get("InvoiceID") or payment["CreditNoteID"]


def _account(code, name, type_, *, status="ACTIVE", tax_type="NONE", enable_payments=False, **extra):
    return {
        "AccountID": new_id(),
        "Code": code,
        "Name": name,
        "Type": type_,
        "Status": status,
        "TaxType": tax_type,
        "EnablePaymentsToAccount": enable_payments,
        "ShowInExpenseClaims": False,
        "Class": {"BANK": "ASSET", "CURRENT": "ASSET", "REVENUE": "REVENUE", "EXPENSE": "EXPENSE"}[type_],
        **extra,
    }


def default_accounts(currency: str) -> list[dict]:
    """The chart of accounts every new organisation starts with (a slice of Xero's NZ demo company)."""
    bank = {"BankAccountType": "BANK", "CurrencyCode": currency}
    return [
        _account("090", "Business Bank Account", "BANK", BankAccountNumber="0101000123456700", **bank),
        _account("091", "Business Savings Account", "BANK", BankAccountNumber="0101000123456701", **bank),
        _account("200", "Sales", "REVENUE", tax_type="OUTPUT2"),
        _account("205", "Shipping income", "REVENUE", tax_type="OUTPUT2"),
        _account("260", "Other Revenue", "REVENUE", tax_type="OUTPUT2"),
        _account("400", "Advertising", "EXPENSE", tax_type="INPUT2"),
        _account("610", "Accounts Receivable", "CURRENT", SystemAccount="DEBTORS"),
        # A clearing account card takings are paid into: not a bank, but open to payments.
        _account("620", "Card clearing", "CURRENT", enable_payments=True),
        _account("880", "Legacy Sales", "REVENUE", status="ARCHIVED", tax_type="OUTPUT2"),
    ]


def _tax_rate(tax_type, name, rate, report_tax_type, *, revenue, expenses):
    return {
        "Name": name,
        "TaxType": tax_type,
        "ReportTaxType": report_tax_type,
        "Status": "ACTIVE",
        "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": expenses,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": revenue,
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
    }


def default_tax_rates() -> list[dict]:
    return [
        _tax_rate("OUTPUT2", "15% GST on Income", NZ_GST, "OUTPUT", revenue=True, expenses=False),
        _tax_rate("INPUT2", "15% GST on Expenses", NZ_GST, "INPUT", revenue=False, expenses=True),
        _tax_rate("NONE", "No GST", ZERO_RATE, "NONE", revenue=True, expenses=True),
        _tax_rate("ZERORATEDOUTPUT", "Zero Rated", ZERO_RATE, "OUTPUT", revenue=True, expenses=False),
    ]


@dataclass
class Organisation:
    tenant_id: str
    name: str
    base_currency: str
    country_code: str
    created: datetime
    accounts: dict[str, dict] = field(default_factory=dict)  # AccountID -> account
    tax_rates: dict[str, dict] = field(default_factory=dict)  # TaxType -> tax rate
    contacts: dict[str, dict] = field(default_factory=dict)  # ContactID -> contact, in creation order
    invoices: dict[str, dict] = field(default_factory=dict)  # InvoiceID -> invoice
    payments: dict[str, dict] = field(default_factory=dict)  # PaymentID -> payment or refund
    credit_notes: dict[str, dict] = field(default_factory=dict)  # CreditNoteID -> credit note
    # AllocationID -> a credit note's amount applied to an invoice; a deleted allocation is removed.
    allocations: dict[str, dict] = field(default_factory=dict)
    # Xero's invoice settings: the next automatic number is INV-{next_invoice_number:04d}, and a credit
    # note's CN-{next_credit_note_number:04d}.
    next_invoice_number: int = 1
    next_credit_note_number: int = 1
    # Sales invoices without a DueDate fall due on the 20th of the following month, as in the demo company.
    sales_due_day: int = 20
    # Index name -> key -> ids in creation order. Built on first use and added to by remember() as records
    # are saved; a lookup checks each record's key again, so an entry a rename left behind finds nothing.
    # Scanning every record on every save made a 20,000-order backfill spend minutes in the emulator.
    _indexes: dict[str, dict[str, dict[str, None]]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(cls, name: str, *, tenant_id: str | None, base_currency: str, now: datetime) -> "Organisation":
        org = cls(
            tenant_id=tenant_id or new_id(),
            name=name,
            base_currency=base_currency,
            country_code="NZ",
            created=now,
        )
        for account in default_accounts(base_currency):
            account["UpdatedDateUTC"] = now
            org.accounts[account["AccountID"]] = account
        org.tax_rates = {rate["TaxType"]: rate for rate in default_tax_rates()}
        return org

    # Lookups. Xero compares names, numbers and codes case-insensitively.

    def account_by_code(self, code: str) -> dict | None:
        wanted = str(code).strip().lower()
        return next((a for a in self.accounts.values() if a["Code"].lower() == wanted), None)

    def contact_by_number(self, number: str) -> dict | None:
        return next(iter(self._lookup("contact_number", number.strip().lower())), None)

    def contacts_named(self, name: str) -> list[dict]:
        return self._lookup("contact_name", name.strip().lower())

    def contact_by_ref(self, ref: str) -> dict | None:
        """A ContactID, or a ContactNumber (GET /Contacts/{ContactNumber} is in Xero's spec)."""
        return self.contacts.get(ref.lower()) or self.contact_by_number(ref)

    def accrec_by_number(self, number: str) -> dict | None:
        found = self._lookup("invoice_number", number.strip().lower())
        return next((i for i in found if i["Type"] == "ACCREC"), None)

    def invoice_by_ref(self, ref: str) -> dict | None:
        """An InvoiceID, or an InvoiceNumber (Xero accepts either in /Invoices/{id})."""
        found = self.invoices.get(ref.lower())
        if found:
            return found
        return next(iter(self._lookup("invoice_number", ref.strip().lower())), None)

    def accreccredit_by_number(self, number: str) -> dict | None:
        found = self._lookup("credit_note_number", number.strip().lower())
        return next((n for n in found if n["Type"] == "ACCRECCREDIT"), None)

    def credit_note_by_ref(self, ref: str) -> dict | None:
        """A CreditNoteID, or a CreditNoteNumber (Xero accepts either in /CreditNotes/{id})."""
        found = self.credit_notes.get(ref.lower())
        if found:
            return found
        return next(iter(self._lookup("credit_note_number", ref.strip().lower())), None)

    def payments_by_document(self) -> dict[str, list[dict]]:
        """Payments grouped by the invoice they are on (refunds by their credit note)."""
        grouped: dict[str, list[dict]] = {}
        for payment in self.payments.values():
            grouped.setdefault(payment_document_id(payment), []).append(payment)
        return grouped

    def live_payments(self, document_id: str) -> list[dict]:
        """The payments on an invoice, or the refunds of a credit note, that are not deleted."""
        return [p for p in self._lookup("payment_document", document_id) if p["Status"] != "DELETED"]

    def allocations_to_invoice(self, invoice_id: str) -> list[dict]:
        return self._lookup("allocation_invoice", invoice_id)

    def allocations_of_credit_note(self, credit_note_id: str) -> list[dict]:
        return self._lookup("allocation_credit_note", credit_note_id)

    def remember(self, collection: str, record: dict) -> None:
        """Index a record of `collection` ("contacts", "invoices", ...) just created or changed."""
        if self._indexes is None:
            return  # the first lookup indexes everything
        for name, (indexed, id_field, key) in _INDEXED.items():
            if indexed == collection:
                self._indexes[name].setdefault(key(record), {})[record[id_field]] = None

    def _lookup(self, name: str, wanted: str) -> list[dict]:
        collection_name, _, key = _INDEXED[name]
        if self._indexes is None:
            self._indexes = {index: {} for index in _INDEXED}
            for collection in _COLLECTIONS:
                for record in getattr(self, collection).values():
                    self.remember(collection, record)
        collection = getattr(self, collection_name)
        found = (collection.get(record_id) for record_id in self._indexes[name].get(wanted, ()))
        return [record for record in found if record is not None and key(record) == wanted]

    # Persistence.

    def to_storable(self) -> dict:
        return to_storable(
            {
                "tenant_id": self.tenant_id,
                "name": self.name,
                "base_currency": self.base_currency,
                "country_code": self.country_code,
                "created": self.created,
                "accounts": list(self.accounts.values()),
                "tax_rates": list(self.tax_rates.values()),
                "contacts": list(self.contacts.values()),
                "invoices": list(self.invoices.values()),
                "payments": list(self.payments.values()),
                "credit_notes": list(self.credit_notes.values()),
                "allocations": list(self.allocations.values()),
                "next_invoice_number": self.next_invoice_number,
                "next_credit_note_number": self.next_credit_note_number,
                "sales_due_day": self.sales_due_day,
            }
        )

    @classmethod
    def from_storable(cls, stored: dict) -> "Organisation":
        data = from_storable(stored)
        return cls(
            tenant_id=data["tenant_id"],
            name=data["name"],
            base_currency=data["base_currency"],
            country_code=data["country_code"],
            created=data["created"],
            accounts={a["AccountID"]: a for a in data["accounts"]},
            tax_rates={t["TaxType"]: t for t in data["tax_rates"]},
            contacts={c["ContactID"]: c for c in data["contacts"]},
            invoices={i["InvoiceID"]: i for i in data["invoices"]},
            payments={p["PaymentID"]: p for p in data["payments"]},
            # State files written before credit notes existed have none.
            credit_notes={n["CreditNoteID"]: n for n in data.get("credit_notes", [])},
            allocations={a["AllocationID"]: a for a in data.get("allocations", [])},
            next_invoice_number=data["next_invoice_number"],
            next_credit_note_number=data.get("next_credit_note_number", 1),
            sales_due_day=data["sales_due_day"],
        )
