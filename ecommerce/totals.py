"""Sale totals computed the way Xero computes an invoice's, so both agree to the cent.

Xero rounds every line on its own: the line amount (quantity x unit price, less the discount) is rounded
to the cent, then the line's tax is computed from that rounded amount and rounded to the cent, and the
invoice totals are sums of those rounded figures. Rounding the invoice total once instead can differ by a
cent per line, which is exactly the silent difference a bookkeeper has to chase. Pure functions: no
database, no Django.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")

# The most a line, or a sale's total, may come to. Xero documents no bound of its own (docs/xero-api.md:
# amounts are JSON doubles), so the bound is what survives the round trip: the website's copies of Xero's
# invoices and payments hold amounts in 14 digits with 2 places (below 10^12), and a double holds every
# such amount exactly to the cent (15 significant digits). A sale over it would reach Xero and then never
# come back (its pulled copy cannot be stored). Quantities and unit prices (4 places) are bounded by their
# own 14-digit columns, below 10^10 each, also exact in a double.
MAX_AMOUNT = Decimal("999999999999.99")

EXCLUSIVE = "exclusive"
INCLUSIVE = "inclusive"
NO_TAX = "no_tax"


def to_cents(value: Decimal) -> Decimal:
    # Half away from zero, as Xero rounds.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineFigures:
    line_amount: Decimal  # what Xero calls LineAmount: tax-inclusive for inclusive sales
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal  # excluding tax
    total_tax: Decimal
    total: Decimal


def line_figures(
    *,
    quantity: Decimal,
    unit_amount: Decimal,
    discount_rate: Decimal,
    tax_rate: Decimal,
    line_amount_type: str,
) -> LineFigures:
    line_amount = to_cents(quantity * unit_amount * (HUNDRED - discount_rate) / HUNDRED)
    if line_amount_type == EXCLUSIVE:
        tax = to_cents(line_amount * tax_rate / HUNDRED)
    elif line_amount_type == INCLUSIVE:
        tax = to_cents(line_amount * tax_rate / (HUNDRED + tax_rate))
    elif line_amount_type == NO_TAX:
        tax = ZERO
    else:
        raise ValueError(f"unknown line amount type {line_amount_type!r}")
    return LineFigures(line_amount=line_amount, tax=tax)


def sale_totals(lines: Iterable[LineFigures], *, line_amount_type: str) -> Totals:
    lines = list(lines)
    line_sum = sum((line.line_amount for line in lines), ZERO)
    total_tax = sum((line.tax for line in lines), ZERO)
    subtotal = line_sum - total_tax if line_amount_type == INCLUSIVE else line_sum
    return Totals(subtotal=subtotal, total_tax=total_tax, total=subtotal + total_tax)
