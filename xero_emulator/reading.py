"""Whether Xero can read a write's body at all, before any element is looked at.

Xero deserialises the whole body first (Json.NET into .NET types): an element that is not an object, or a
number that is not a number or does not fit a .NET decimal, fails the whole request with a 400
``PostDataInvalidException`` (ErrorNumber 14, "JSON request body could not be read, ...") and nothing in
it is saved, whatever ``summarizeErrors`` says. Values that read but break a rule (a negative quantity)
are per-element ValidationErrors instead (rules.py). The detail after the comma follows Json.NET's
wording with the element's path; Xero's exact text for each case is not documented.
"""

import json
from decimal import Decimal, InvalidOperation

# The largest .NET decimal: 2**96 - 1.
DOTNET_DECIMAL_MAX = Decimal(2**96 - 1)
TYPE_NAMES = {
    "Contacts": "Contact",
    "Invoices": "Invoice",
    "CreditNotes": "CreditNote",
    "Payments": "Payment",
    "Allocations": "Allocation",
}
# The decimal fields of each element (and of its line items).
NUMBERS = {
    "Contacts": (),
    "Invoices": ("SubTotal", "TotalTax", "Total", "CurrencyRate"),
    "CreditNotes": ("SubTotal", "TotalTax", "Total", "CurrencyRate"),
    "Payments": ("Amount", "CurrencyRate", "BankAmount"),
    "Allocations": ("Amount",),
}
WITH_LINES = ("Invoices", "CreditNotes")
LINE_NUMBERS = ("Quantity", "UnitAmount", "LineAmount", "DiscountRate", "DiscountAmount", "TaxAmount")


def unreadable(resource: str, elements: list[object]) -> str | None:
    """Json.NET's complaint about the first value it cannot read, or None when the body reads."""
    for position, element in enumerate(elements):
        path = f"{resource}[{position}]"
        if not isinstance(element, dict):
            return f"Error converting value {_shown(element)} to type '{TYPE_NAMES[resource]}'. Path '{path}'."
        problem = _numbers(element, NUMBERS[resource], path)
        if problem:
            return problem
        lines = element.get("LineItems") if resource in WITH_LINES else None
        for index, line in enumerate(lines if isinstance(lines, list) else []):
            line_path = f"{path}.LineItems[{index}]"
            if not isinstance(line, dict):
                return f"Error converting value {_shown(line)} to type 'LineItem'. Path '{line_path}'."
            problem = _numbers(line, LINE_NUMBERS, line_path)
            if problem:
                return problem
    return None


def _numbers(element: dict, fields: tuple[str, ...], path: str) -> str | None:
    for field in fields:
        value = element.get(field)
        if value is None or isinstance(value, bool):
            continue
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            return f"Could not convert string to decimal: {value}. Path '{path}.{field}'."
        if not number.is_finite() or abs(number) > DOTNET_DECIMAL_MAX:
            return f"Value was either too large or too small for a Decimal. Path '{path}.{field}'."
    return None


def _shown(value: object) -> str:
    return json.dumps(value, default=str)
