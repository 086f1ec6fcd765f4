"""Xero's list parameters: ``where``, ``order`` and paging, evaluated on the JSON a record renders to.

``where`` is Xero's .NET Dynamic LINQ dialect. This supports the part integrations use: ``==`` ``!=``
``=`` ``<`` ``<=`` ``>`` ``>=``, ``&&``/``AND``, ``||``/``OR``, ``!``/``NOT``, parentheses, dotted paths
(``Contact.ContactID``), literals (``"text"``, numbers, ``true``/``false``, ``null``, ``Guid("...")``,
``DateTime(2026, 1, 2)``) and ``.Contains/.StartsWith/.EndsWith("...")``. Anything else is refused with a
400 rather than ignored, so a client never mistakes an unfiltered list for a filtered one. String
comparisons ignore case, as Xero's (SQL-backed) filters do.
"""

import math
import re
from datetime import UTC, datetime
from decimal import Decimal

from .serialize import parse_ms_date


class QueryError(ValueError):
    """A list parameter Xero would refuse (400 QueryParseException)."""


def _fields(names: str) -> frozenset[str]:
    return frozenset(name.lower() for name in names.split())


# Top-level property names from the spec's schemas; a where/order on any other name is an error.
KNOWN_FIELDS = {
    "Contact": _fields(
        "ContactID MergedToContactID ContactNumber AccountNumber ContactStatus Name FirstName LastName "
        "CompanyNumber EmailAddress ContactPersons BankAccountDetails TaxNumber TaxNumberType "
        "AccountsReceivableTaxType AccountsPayableTaxType Addresses Phones IsSupplier IsCustomer "
        "SalesDefaultLineAmountType PurchasesDefaultLineAmountType DefaultCurrency XeroNetworkKey "
        "SalesDefaultAccountCode PurchasesDefaultAccountCode SalesTrackingCategories "
        "PurchasesTrackingCategories TrackingCategoryName TrackingCategoryOption PaymentTerms UpdatedDateUTC "
        "ContactGroups Website BrandingTheme BatchPayments Discount Balances Attachments HasAttachments "
        "ValidationErrors HasValidationErrors StatusAttributeString"
    ),
    "Invoice": _fields(
        "Type Contact LineItems Date DueDate LineAmountTypes InvoiceNumber Reference BrandingThemeID Url "
        "CurrencyCode CurrencyRate Status SentToContact ExpectedPaymentDate PlannedPaymentDate CISDeduction "
        "CISRate SubTotal TotalTax Total TotalDiscount InvoiceID RepeatingInvoiceID HasAttachments "
        "IsDiscounted Payments Prepayments Overpayments AmountDue AmountPaid FullyPaidOnDate AmountCredited "
        "UpdatedDateUTC CreditNotes Attachments HasErrors StatusAttributeString ValidationErrors Warnings "
        "InvoiceAddresses"
    ),
    "CreditNote": _fields(
        "Type Contact Date DueDate Status LineAmountTypes LineItems SubTotal TotalTax Total CISDeduction CISRate "
        "UpdatedDateUTC UpdatedDateUTCString CurrencyCode FullyPaidOnDate CreditNoteID CreditNoteNumber Reference "
        "SentToContact CurrencyRate RemainingCredit Allocations AppliedAmount Payments BrandingThemeID "
        "StatusAttributeString HasAttachments HasErrors ValidationErrors Warnings InvoiceAddresses"
    ),
    "Payment": _fields(
        "Invoice CreditNote Prepayment Overpayment InvoiceNumber CreditNoteNumber BatchPayment Account Code "
        "Date CurrencyRate Amount BankAmount Reference IsReconciled Status PaymentType UpdatedDateUTC "
        "PaymentID BatchPaymentID BankAccountNumber Particulars Details HasAccount HasValidationErrors "
        "StatusAttributeString ValidationErrors Warnings"
    ),
    "Account": _fields(
        "Code Name AccountID Type BankAccountNumber Status Description BankAccountType CurrencyCode TaxType "
        "EnablePaymentsToAccount ShowInExpenseClaims Class SystemAccount ReportingCode ReportingCodeName "
        "HasAttachments UpdatedDateUTC AddToWatchlist"
    ),
    "TaxRate": _fields(
        "Name TaxType TaxComponents Status ReportTaxType CanApplyToAssets CanApplyToEquity "
        "CanApplyToExpenses CanApplyToLiabilities CanApplyToRevenue DisplayTaxRate EffectiveRate"
    ),
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|&&|\|\||[()<>=!,.])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_COMPARISONS = ("==", "!=", "=", "<", "<=", ">", ">=")
_METHODS = ("contains", "startswith", "endswith")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(f"Syntax error at position {position} in '{text}'")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; builds closures ``record -> value``."""

    def __init__(self, text: str, type_name: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.type_name = type_name

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].lower() != value.lower()):
            raise QueryError(f"Expected '{value}'" if value else "Unexpected end of expression")
        self.index += 1
        return token

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "word") and token[1].upper() in values

    def parse(self):
        predicate = self.disjunction()
        if self.peek() is not None:
            raise QueryError(f"Syntax error near '{self.peek()[1]}'")
        return predicate

    def disjunction(self):
        parts = [self.conjunction()]
        while self.at("||", "OR"):
            self.index += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(_truth(p(r)) for p in parts)

    def conjunction(self):
        parts = [self.negation()]
        while self.at("&&", "AND"):
            self.index += 1
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda r: all(_truth(p(r)) for p in parts)

    def negation(self):
        if self.at("!", "NOT"):
            self.index += 1
            inner = self.negation()
            return lambda r: not _truth(inner(r))
        return self.comparison()

    def comparison(self):
        if self.at("("):
            self.index += 1
            inner = self.disjunction()
            self.take(")")
            return inner
        left = self.operand()
        token = self.peek()
        if token is None or token[0] != "op" or token[1] not in _COMPARISONS:
            return left
        self.index += 1
        operator = "==" if token[1] == "=" else token[1]
        right = self.operand()
        return lambda r: _compare(operator, left(r), right(r))

    def operand(self):
        kind, text = self.take()
        if kind == "string":
            value = text[1:-1]
            return lambda r: value
        if kind == "number":
            number = Decimal(text)
            return lambda r: number
        if kind != "word":
            raise QueryError(f"Syntax error near '{text}'")
        word = text.lower()
        if word in ("true", "false"):
            return lambda r, v=(word == "true"): v
        if word == "null":
            return lambda r: None
        if word == "guid" and self.at("("):
            return self.guid()
        if word == "datetime" and self.at("("):
            return self.datetime_literal()
        return self.path(text)

    def guid(self):
        self.take("(")
        kind, text = self.take()
        self.take(")")
        if kind != "string":
            raise QueryError("Guid() takes a quoted value")
        value = text[1:-1].lower()
        return lambda r: value

    def datetime_literal(self):
        self.take("(")
        parts = [int(self.take()[1])]
        while self.at(","):
            self.index += 1
            parts.append(int(self.take()[1]))
        self.take(")")
        if not 3 <= len(parts) <= 6:
            raise QueryError("DateTime() takes year, month, day and optionally hour, minute, second")
        moment = datetime(*parts, tzinfo=UTC)
        return lambda r: moment

    def path(self, first: str):
        if first.lower() not in KNOWN_FIELDS[self.type_name]:
            raise QueryError(f"No property or field '{first}' exists in type '{self.type_name}'")
        steps = [first]
        while self.at("."):
            self.index += 1
            steps.append(self.take()[1])
        method = None
        if self.at("(") and steps[-1].lower() in _METHODS and len(steps) > 1:
            method = steps.pop().lower()
            self.take("(")
            kind, text = self.take()
            self.take(")")
            if kind != "string":
                raise QueryError(f"{method}() takes a quoted value")
            argument = text[1:-1].lower()
        elif self.at("("):
            raise QueryError(f"No applicable method '{steps[-1]}' exists in type '{self.type_name}'")

        def value(record):
            current = record
            for step in steps:
                current = _get(current, step)
            if method is None:
                return current
            text_value = str(current or "").lower()
            return {
                "contains": argument in text_value,
                "startswith": text_value.startswith(argument),
                "endswith": text_value.endswith(argument),
            }[method]

        return value


def _get(container: object, key: str) -> object:
    if not isinstance(container, dict):
        return None
    if key in container:
        return container[key]
    lowered = key.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)


def _truth(value: object) -> bool:
    if not isinstance(value, bool):
        raise QueryError("Expression of type 'Boolean' expected")
    return value


def _comparable(value: object) -> object:
    """Dates come back from the JSON as /Date(..)/ strings; compare them as datetimes."""
    if isinstance(value, str):
        moment = parse_ms_date(value)
        return moment if moment is not None else value.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _compare(operator: str, left: object, right: object) -> bool:
    if left is None or right is None or left == "" or right == "":
        # null matches missing and empty values, as it does for Xero's optional strings.
        same = (left in (None, "")) == (right in (None, ""))
        if operator in ("==", "!="):
            return same if operator == "==" else not same
        return False
    a, b = _comparable(left), _comparable(right)
    if type(a) is not type(b):
        raise QueryError(
            f"Operator '{operator}' incompatible with operand types '{type(a).__name__}' and '{type(b).__name__}'"
        )
    if operator == "==":
        return a == b
    if operator == "!=":
        return a != b
    if isinstance(a, bool):
        raise QueryError(f"Operator '{operator}' incompatible with operand type 'Boolean'")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator]


def where_predicate(text: str, type_name: str):
    """Compile a where clause; raises QueryError for anything outside the supported dialect."""
    predicate = _Parser(text, type_name).parse()

    def check(record: dict) -> bool:
        return _truth(predicate(record))

    return check


def apply_order(items: list[dict], order: str, type_name: str) -> list[dict]:
    """``order=Name``, ``UpdatedDateUTC DESC``, ``Date DESC, InvoiceNumber`` ..."""
    keys = []
    for clause in order.split(","):
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise QueryError(f"Invalid order clause '{clause.strip()}'")
        steps = words[0].split(".")
        if steps[0].lower() not in KNOWN_FIELDS[type_name]:
            raise QueryError(f"No property or field '{steps[0]}' exists in type '{type_name}'")
        keys.append((steps, len(words) == 2 and words[1].upper() == "DESC"))
    ordered = list(items)
    for steps, descending in reversed(keys):

        def sort_key(record, steps=steps):
            value = record
            for step in steps:
                value = _get(value, step)
            value = _comparable(value)
            # Missing values sort first; the tuple keeps None away from real comparisons.
            return (value is not None, value if value is not None else 0)

        ordered.sort(key=sort_key, reverse=descending)
    return ordered


def parse_positive_int(query: dict, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"The value '{raw}' is not valid for {name}") from None
    if value < 1:
        raise QueryError(f"The value '{raw}' is not valid for {name}")
    return value


DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def paginate(items: list[dict], page: int, page_size: int) -> tuple[list[dict], dict]:
    start = (page - 1) * page_size
    pagination = {
        "page": page,
        "pageSize": page_size,
        "pageCount": math.ceil(len(items) / page_size),
        "itemCount": len(items),
    }
    return items[start : start + page_size], pagination
