"""Every write to the shop goes through here: the admin, the demo seed and the tests call the same code.

Each service validates everything before it writes and runs in one transaction, so a bad input leaves
nothing half-saved. The models validate their own fields; the rules that read other records live here,
each once:

- a sale's status moves only as `Sale.ALLOWED_TRANSITIONS` allows (a confirmed sale is cancelled, never a
  draft again), and a cancelled sale is frozen;
- a confirmed sale has at least one line (Xero refuses an invoice without one);
- no line, and no sale's total, comes to more than totals.MAX_AMOUNT (what the accounts can hold);
- receipts are taken on confirmed sales only, and do not pay more than is due unless overpayment is
  allowed; receipts written together are judged together, under the sale's row lock, so two staff (or
  two rows of one form) cannot each fit under the same amount due;
- a refund gives back no more than was received and not yet given back, credits no more than is left to
  credit, and no more of a line than is left of it; once a sale has a refund its lines, contact, currency and
  tax treatment are history (the credit notes in the accounts are for them) and no longer change;
- a sale with money received is not cancelled silently: cancelling it refunds it in the same step (the
  "Cancel and refund" choice, which names how the money goes back), or is refused;
- numbers (S-000042, CN-000042) skip any the accounts already hold for a document the website did not make,
  so the push never lands on the bookkeeper's own invoice or credit note.
"""

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import selectors, totals
from .models import (
    Contact,
    CreditNote,
    Invoice,
    LineAmountType,
    NumberSequence,
    PaymentMethod,
    Receipt,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
)
from .selectors import sale_amount_due
from .signals import sale_lines_replaced

SALE_NUMBER_SEQUENCE = "sale"
REFUND_NUMBER_SEQUENCE = "credit_note"
# What a refund freezes on its sale: its credit notes in the accounts are for these.
FIELDS_FROZEN_BY_REFUNDS = frozenset({"contact", "currency", "line_amount_type"})
CONTACT_FIELDS = frozenset(
    f.name for f in Contact._meta.concrete_fields if f.name not in {"id", "created_at", "updated_at"}
)
SALE_FIELDS = frozenset({"contact", "date", "due_date", "currency", "line_amount_type", "reference", "notes"})
LINE_FIELDS = frozenset(
    {"kind", "description", "quantity", "unit_amount", "discount_rate", "tax_rate", "tax_code", "account_code",
     "item_code"}
)
# A line given with its id is that stored line, changed in place; a line without one is new.
LINE_ID = "id"
LINE_WRITTEN_FIELDS = sorted(LINE_FIELDS | {"position"})
RECEIPT_FIELDS = frozenset({"payment_method", "amount", "date", "reference", "overpayment_allowed"})
PAYMENT_METHOD_FIELDS = frozenset({"name", "code", "active"})


def _reject_unknown(fields: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError(f"Unknown {what} field(s): {', '.join(unknown)}.")


def _save_fields(record, fields: Mapping[str, Any], *, allowed: frozenset[str], what: str):
    """Set these fields on a record with no rules beyond its own fields' (a contact, a payment method),
    validate and save it."""
    _reject_unknown(fields, allowed, what)
    for name, value in fields.items():
        setattr(record, name, value)
    record.full_clean()
    record.save()
    return record


# --- contacts ---------------------------------------------------------------------------------------


@transaction.atomic
def contact_create(**fields: Any) -> Contact:
    return _save_fields(Contact(), fields, allowed=CONTACT_FIELDS, what="contact")


@transaction.atomic
def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    return _save_fields(contact, fields, allowed=CONTACT_FIELDS, what="contact")


# --- sales ------------------------------------------------------------------------------------------


def _number_next(sequence: str, prefix: str, taken_in_accounts) -> str:
    """The next number of a gapless counter, skipping numbers the accounts already hold for a document the
    website did not make (`taken_in_accounts(number)`).

    The UPDATE takes the counter row's lock until the caller's transaction ends, so concurrent writers get
    distinct numbers, and a record refused later in that transaction gives its number back."""
    counter = NumberSequence.objects.filter(name=sequence)
    if not counter.update(last_value=F("last_value") + 1):
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                NumberSequence.objects.create(name=sequence)
        except IntegrityError:
            pass
        counter.update(last_value=F("last_value") + 1)
    while True:
        number = f"{prefix}-{counter.get().last_value:06d}"
        if not taken_in_accounts(number):
            return number
        counter.update(last_value=F("last_value") + 1)


def _sale_number_next() -> str:
    # An invoice pulled from Xero with this number is not ours (a sale's number is unique among sales): the
    # bookkeeper typed it, and pushing a sale under it would land on their invoice.
    return _number_next(SALE_NUMBER_SEQUENCE, "S",
                        lambda number: Invoice.objects.filter(number=number).exclude(sale__number=number).exists())


def _refund_number_next() -> str:
    return _number_next(REFUND_NUMBER_SEQUENCE, "CN",
                        lambda number: CreditNote.objects.filter(number=number, refund__isnull=True).exists())


def _check_status_change(sale: Sale, wanted: str) -> None:
    if wanted not in Sale.ALLOWED_TRANSITIONS[sale.status]:
        raise ValidationError({
            "status": f"A {Sale.Status(sale.status).label.lower()} sale cannot become "
            f"{Sale.Status(wanted).label.lower()}."
            + (" Cancel it instead." if sale.status == Sale.Status.CONFIRMED else "")
        })


def _check_has_a_line(sale: Sale, *, has_lines: bool, confirming: bool = False) -> None:
    """A confirmed sale has at least one line. `confirming` words it for the one-click confirm, which
    names the sale; on the sale's own page the sale needs no naming."""
    if sale.status == Sale.Status.CONFIRMED and not has_lines:
        raise ValidationError(f"{sale.number} has no lines; add at least one before confirming." if confirming
                              else "A confirmed sale needs at least one line.")


def _check_amounts(sale: Sale, lines: Iterable[SaleLine]) -> None:
    """Each line, and the sale's total, within totals.MAX_AMOUNT, computed as Xero computes them."""
    figures, errors = [], {}
    for position, line in enumerate(lines, start=1):
        figure = totals.line_figures(quantity=line.quantity, unit_amount=line.unit_amount,
                                     discount_rate=line.discount_rate, tax_rate=line.tax_rate,
                                     line_amount_type=sale.line_amount_type)
        if figure.line_amount > totals.MAX_AMOUNT:
            errors[f"line {position}"] = ValidationError(
                f"This line comes to {figure.line_amount:,}; a line can come to at most {totals.MAX_AMOUNT:,}.",
                code="amount_too_large")
        figures.append(figure)
    if errors:
        raise ValidationError(errors)
    total = totals.sale_totals(figures, line_amount_type=sale.line_amount_type).total
    if total > totals.MAX_AMOUNT:
        raise ValidationError(f"The sale comes to {total:,}; a sale can come to at most {totals.MAX_AMOUNT:,}. "
                              "Split it into several sales.", code="amount_too_large")


def _line_values(line: SaleLine) -> tuple:
    return tuple(getattr(line, name) for name in LINE_WRITTEN_FIELDS)


class _Lines:
    """A sale's lines as they are to be: built and validated from the caller's mappings, then written in
    bulk, at most one query per kind of write, whatever the number of lines."""

    def __init__(self, sale: Sale, rows: Iterable[Mapping[str, Any]], stored: Iterable[SaleLine] | None):
        """`stored`: the sale's stored lines, which rows may name by id; None when no row names one, and
        every stored line is to go (they are then not even read)."""
        self.sale = sale
        self.replace_all = stored is None
        self.stored = {line.pk: line for line in stored or ()}
        before = {pk: _line_values(line) for pk, line in self.stored.items()}
        self.lines, errors = [], {}
        for position, row in enumerate(rows, start=1):
            _reject_unknown(row, LINE_FIELDS | {LINE_ID}, "sale line")
            fields = dict(row)
            line_id = fields.pop(LINE_ID, None)
            if line_id is None:
                line = SaleLine(sale=sale, position=position, **fields)
            elif line_id in self.stored:
                line = self.stored[line_id]
                line.position = position
                for name, value in fields.items():
                    setattr(line, name, value)
            else:
                errors[f"line {position}"] = ["This line is no longer on the sale (changed meanwhile?): reload it."]
                continue
            try:
                # The field validators say the same as the check constraints, in words staff understand and
                # without a query per constraint per line; the constraints still guard the table.
                line.full_clean(exclude=["sale"], validate_constraints=False)
            except ValidationError as error:
                errors[f"line {position}"] = error.messages
            self.lines.append(line)
        if errors:
            raise ValidationError({key: ValidationError(" ".join(messages)) for key, messages in errors.items()})
        kept = {line.pk for line in self.lines if line.pk}
        self.removed = [pk for pk in self.stored if pk not in kept]
        self.changed = [line for line in self.lines if line.pk and _line_values(line) != before[line.pk]]
        self.new = [line for line in self.lines if not line.pk]

    def write(self) -> None:
        """Delete the removed lines, update the changed ones and insert the new ones, then tell receivers
        (ecommerce.signals), as bulk writes send no post_save per line. A save that leaves every line as
        it was writes nothing and says nothing."""
        removed = 0
        # One DELETE statement. QuerySet.delete() would first load every line and send post_delete for each
        # (Django gives up its fast delete while anything listens to SaleLine's deletes, as the sync does for
        # a line deleted on its own); nothing references a line, and sale_lines_replaced tells the listeners.
        if self.replace_all:
            removed = SaleLine.objects.filter(sale=self.sale)._raw_delete(SaleLine.objects.db)
        elif self.removed:
            removed = SaleLine.objects.filter(sale=self.sale, pk__in=self.removed)._raw_delete(SaleLine.objects.db)
        if self.changed:
            SaleLine.objects.bulk_update(self.changed, LINE_WRITTEN_FIELDS)
        for line in self.new:
            line.sale = self.sale  # a new sale had no id when its lines were built
        if self.new:
            SaleLine.objects.bulk_create(self.new)
        if removed or self.changed or self.new:
            sale_lines_replaced.send(sender=Sale, sale=self.sale)


@transaction.atomic
def sale_create(
    *,
    contact: Contact,
    lines: Iterable[Mapping[str, Any]] = (),
    confirm: bool = False,
    **fields: Any,
) -> Sale:
    """Create a draft sale, numbered, with its lines; with confirm=True confirm it in the same transaction."""
    _reject_unknown(fields, SALE_FIELDS - {"contact"}, "sale")
    sale = Sale(contact=contact, **fields)
    sale.full_clean(exclude=["number"])
    new_lines = _Lines(sale, lines, stored=())
    _check_amounts(sale, new_lines.lines)
    sale.number = _sale_number_next()  # only once all is valid: the counter row stays locked until commit
    sale.save()
    new_lines.write()
    if confirm:
        sale = sale_confirm(sale=sale)
    return sale


@transaction.atomic
def sale_update(
    *,
    sale: Sale,
    lines: Iterable[Mapping[str, Any]] | None = None,
    status: str | None = None,
    **fields: Any,
) -> Sale:
    """Change a sale's fields and status and, when `lines` is given, make its lines those: rows with an
    `id` change that stored line in place, rows without one are added, stored lines not given are
    removed. Their order is the lines' order."""
    _reject_unknown(fields, SALE_FIELDS, "sale")
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    if status is not None and status != sale.status:
        _check_status_change(sale, status)
    if sale.status == Sale.Status.CANCELLED:
        raise ValidationError(f"{sale.number} is cancelled and can no longer be changed.")
    becomes_confirmed = status == Sale.Status.CONFIRMED and sale.status != Sale.Status.CONFIRMED
    if (lines is not None or FIELDS_FROZEN_BY_REFUNDS & set(fields)) and sale.refunds.exists():
        _check_unchanged_after_refunds(sale, fields, lines)
    for name, value in fields.items():
        setattr(sale, name, value)
    if status is not None:
        sale.status = status
    sale.full_clean(exclude=["number"])
    if lines is not None:
        lines = list(lines)
        # Rows that name stored lines need those lines (to check they are this sale's, and to write only
        # what changed); rows that are all new replace every stored line without reading them.
        stored = sale.lines.all() if any(row.get(LINE_ID) is not None for row in lines) else None
        new_lines = _Lines(sale, lines, stored)
        _check_has_a_line(sale, has_lines=bool(new_lines.lines))
        _check_amounts(sale, new_lines.lines)
        new_lines.write()
    else:
        if becomes_confirmed:
            _check_has_a_line(sale, has_lines=sale.lines.exists())
        if "line_amount_type" in fields:  # the same lines may come to more (tax added on top)
            _check_amounts(sale, sale.lines.all())
    sale.save()
    return sale


@transaction.atomic
def sale_confirm(*, sale: Sale) -> Sale:
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    if sale.status == Sale.Status.CONFIRMED:
        return sale
    if Sale.Status.CONFIRMED not in Sale.ALLOWED_TRANSITIONS[sale.status]:
        raise ValidationError(f"Only a draft sale can be confirmed; {sale.number} is {sale.status}.")
    sale.status = Sale.Status.CONFIRMED
    _check_has_a_line(sale, has_lines=sale.lines.exists(), confirming=True)
    sale.save(update_fields=["status", "updated_at"])
    return sale


def _check_unchanged_after_refunds(sale: Sale, fields: Mapping[str, Any], lines) -> None:
    changed = sorted(name for name in FIELDS_FROZEN_BY_REFUNDS & set(fields) if getattr(sale, name) != fields[name])
    if lines is not None:
        stored = [(line.pk, _line_values(line)[1:]) for line in sale.lines.all()]
        given = []
        for position, row in enumerate(lines, start=1):
            line = SaleLine(sale=sale, position=position, **{k: v for k, v in row.items() if k != LINE_ID})
            given.append((row.get(LINE_ID), _line_values(line)[1:]))
        if [values for _, values in stored] != [values for _, values in given]:
            changed.append("lines")
    if changed:
        raise ValidationError(
            f"{sale.number} has refunds, so its {', '.join(changed)} can no longer change: the credit notes in the "
            "accounts are for the sale as it was. Record another refund, or a new sale, instead.")


@transaction.atomic
def sale_cancel(*, sale: Sale, refund_to: PaymentMethod | None = None, reason: str = "") -> Sale:
    """Cancel a sale. A draft is simply cancelled. A confirmed sale with no money received and no credit is
    cancelled and its invoice voided in the accounts. A sale with money received cannot be cancelled on its
    own: with `refund_to` ("Cancel and refund") the money held goes back by that method and the rest of the
    sale is credited, in one refund recorded with the cancellation; without it, it is refused."""
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    if sale.status == Sale.Status.CANCELLED:
        return sale
    if sale.status == Sale.Status.CONFIRMED:
        sale = _sale_with_money(sale.pk)
        held = selectors.sale_amount_held(sale)
        due = selectors.sale_amount_due(sale)
        if due < 0:
            raise ValidationError(
                f"{sale.number} is overpaid by {-due}. Refund the overpayment first, then cancel it.")
        if held > 0 and refund_to is None:
            raise ValidationError(
                f"{sale.number} has {held} received. Refund it first, or choose 'Cancel and refund' and how the "
                "money goes back: cancelling alone would leave the customer's money in the books.")
        if held > 0 and not refund_to.active:
            raise ValidationError({"refund_to": f"{refund_to} is not active."})
        creditable = selectors.sale_amount_creditable(sale)
        has_history = held > 0 or selectors.sale_amount_paid(sale) > 0 or sale.refunds.all() or             selectors.sale_credit_allocated_in_xero(sale) > 0
        if has_history and creditable > 0:
            # Money or credit already touches the invoice, so the accounts cannot void it: credit what is left.
            _refund_write(sale, method=refund_to if held > 0 else None, allocated=creditable - held,
                          lines=_refund_lines(sale, amount=creditable), reason=reason or "Sale cancelled",
                          cancels_sale=True)
    sale.status = Sale.Status.CANCELLED
    sale.save(update_fields=["status", "updated_at"])
    return sale


# --- refunds ----------------------------------------------------------------------------------------


def _sale_with_money(sale_id: int) -> Sale:
    return Sale.objects.prefetch_related(*selectors.SALE_PREFETCH).get(pk=sale_id)


def _refunded_quantities(sale: Sale) -> dict[int, Decimal]:
    refunded: dict[int, Decimal] = {}
    for line in RefundLine.objects.filter(refund__sale=sale, sale_line__isnull=False):
        refunded[line.sale_line_id] = refunded.get(line.sale_line_id, Decimal("0")) + line.quantity
    return refunded


def _copy_line(line: SaleLine, *, quantity: Decimal, position: int) -> RefundLine:
    return RefundLine(sale_line=line, position=position, description=line.description, quantity=quantity,
                      unit_amount=line.unit_amount, discount_rate=line.discount_rate, tax_rate=line.tax_rate,
                      tax_code=line.tax_code, account_code=line.account_code, item_code=line.item_code, kind=line.kind)


def _refund_lines_of(sale: Sale, chosen: Iterable[Mapping[str, Any]]) -> list[RefundLine]:
    """The credit note's lines for these sale lines and quantities, each no more than is left of its line."""
    refunded = _refunded_quantities(sale)
    lines, errors, seen = [], {}, set()
    for position, row in enumerate(chosen, start=1):
        _reject_unknown(row, frozenset({"line", "quantity"}), "refund line")
        line, quantity = row.get("line"), row.get("quantity")
        if not isinstance(line, SaleLine) or line.sale_id != sale.pk:
            errors[f"line {position}"] = f"This is not a line of {sale.number}."
            continue
        if line.pk in seen:
            errors[f"line {position}"] = f"'{line.description}' is given twice; give it once with its quantity."
            continue
        seen.add(line.pk)
        quantity = line.quantity if quantity is None else Decimal(str(quantity))
        left = line.quantity - refunded.get(line.pk, Decimal("0"))
        if quantity <= 0:
            errors[f"line {position}"] = "The quantity to refund must be more than zero."
        elif quantity > left:
            errors[f"line {position}"] = (
                f"'{line.description}': {quantity.normalize():f} is more than the {left.normalize():f} left to refund "
                f"of its {line.quantity.normalize():f}.")
        else:
            lines.append(_copy_line(line, quantity=quantity, position=position))
    if errors:
        raise ValidationError({key: ValidationError(message) for key, message in errors.items()})
    if not lines:
        raise ValidationError("Choose at least one line to refund.")
    return lines


def _refund_lines(sale: Sale, *, amount: Decimal) -> list[RefundLine]:
    """The credit note's lines for an amount of the sale: the sale's own lines when the amount is the whole
    sale and nothing was credited before; otherwise the amount shared across the sale's accounts and tax
    codes in proportion to what each came to (the last share takes the rounding), tax included, so the tax
    credited is each share's own and the lines add up to the amount exactly."""
    sale_lines = list(sale.lines.all())
    if amount == selectors.sale_totals(sale).total and not sale.refunds.all()             and selectors.sale_credit_allocated_in_xero(sale) == 0:
        return [_copy_line(line, quantity=line.quantity, position=position)
                for position, line in enumerate(sale_lines, start=1)]
    groups: dict[tuple, Decimal] = {}
    for line in sale_lines:
        figure = totals.line_figures(quantity=line.quantity, unit_amount=line.unit_amount,
                                     discount_rate=line.discount_rate, tax_rate=line.tax_rate,
                                     line_amount_type=sale.line_amount_type)
        gross = figure.line_amount + (figure.tax if sale.line_amount_type == totals.EXCLUSIVE else 0)
        key = (line.kind, line.account_code, line.tax_code, line.tax_rate)
        groups[key] = groups.get(key, totals.ZERO) + gross
    weight = sum(groups.values(), totals.ZERO)
    keys = sorted(groups, key=lambda key: groups[key])  # the largest share last: it takes the rounding
    shares, given = {}, totals.ZERO
    for key in keys[:-1]:
        shares[key] = (amount * groups[key] / weight).quantize(totals.CENT, rounding="ROUND_DOWN") if weight else 0
        given += shares[key]
    shares[keys[-1]] = amount - given
    several = len([key for key in keys if shares[key] > 0]) > 1
    lines = []
    for position, key in enumerate(reversed(keys), start=1):
        if shares[key] <= 0:
            continue
        kind, account_code, tax_code, tax_rate = key
        described = f" ({tax_code or 'no tax code'}{', ' + account_code if account_code else ''})" if several else ""
        lines.append(RefundLine(position=position, kind=kind, account_code=account_code, tax_code=tax_code,
                                tax_rate=tax_rate, quantity=Decimal("1"), unit_amount=shares[key],
                                description=f"Refund on {sale.number}{described}"))
    return lines


def _refund_line_amount_type(sale: Sale, lines: list[RefundLine]) -> str:
    # Lines made from an amount are tax inclusive (the amount is what the customer gets back); lines copied
    # from the sale keep its treatment.
    if all(line.sale_line_id for line in lines) or sale.line_amount_type == LineAmountType.NO_TAX:
        return sale.line_amount_type
    return LineAmountType.INCLUSIVE


def _refund_write(sale: Sale, *, method: PaymentMethod | None, allocated: Decimal, lines: list[RefundLine],
                  reason: str, cancels_sale: bool = False) -> Refund:
    """Store a refund of these lines: `allocated` of its credit is taken off what the sale owes, and the rest
    of the credit is the money paid back by `method`."""
    line_amount_type = _refund_line_amount_type(sale, lines)
    figures = [totals.line_figures(quantity=line.quantity, unit_amount=line.unit_amount,
                                   discount_rate=line.discount_rate, tax_rate=line.tax_rate,
                                   line_amount_type=line_amount_type) for line in lines]
    credit = totals.sale_totals(figures, line_amount_type=line_amount_type)
    refunded = credit.total - allocated
    refund = Refund(sale=sale, payment_method=method, reason=reason, line_amount_type=line_amount_type,
                    credit_subtotal=credit.subtotal, credit_tax=credit.total_tax, credit_total=credit.total,
                    amount_refunded=refunded, amount_allocated=allocated, cancels_sale=cancels_sale)
    refund.full_clean(exclude=["number"])
    refund.number = _refund_number_next()
    refund.save()
    for line in lines:
        line.refund = refund
    RefundLine.objects.bulk_create(lines)
    return refund


@transaction.atomic
def refund_record(
    *,
    sale: Sale,
    payment_method: PaymentMethod,
    amount: Decimal | None = None,
    lines: Iterable[Mapping[str, Any]] | None = None,
    reason: str = "",
) -> Refund:
    """Record money given back to the customer on a confirmed sale, by `payment_method`: the whole of what
    was received (no `amount`, no `lines`), an amount, or some of its lines with quantities
    (`[{"line": <SaleLine>, "quantity": Decimal("1")}]`). It becomes a credit note for exactly that in the
    accounts, with a refund payment from the method's account; the sale's invoice stays as it is."""
    sale = Sale.objects.select_for_update().get(pk=sale.pk)  # two refunds at once cannot both fit
    if sale.status == Sale.Status.DRAFT:
        raise ValidationError(f"{sale.number} is a draft: nothing was invoiced or received, so nothing can be refunded.")
    if amount is not None and lines is not None:
        raise ValidationError("Give an amount or lines to refund, not both.")
    if payment_method is None:
        raise ValidationError({"payment_method": "Choose how the money goes back."})
    sale = _sale_with_money(sale.pk)
    held = selectors.sale_amount_held(sale)
    if held <= 0:
        raise ValidationError(f"Nothing was received on {sale.number} (or it was all given back already), so there "
                              "is nothing to refund.")
    if lines is not None:
        refund_lines = _refund_lines_of(sale, lines)
        figures = [totals.line_figures(quantity=line.quantity, unit_amount=line.unit_amount,
                                       discount_rate=line.discount_rate, tax_rate=line.tax_rate,
                                       line_amount_type=sale.line_amount_type) for line in refund_lines]
        wanted = totals.sale_totals(figures, line_amount_type=sale.line_amount_type).total
    else:
        wanted = held if amount is None else Decimal(str(amount))
        if wanted.as_tuple().exponent < -2:
            raise ValidationError({"amount": "An amount has at most two decimal places (cents)."})
        if wanted <= 0:
            raise ValidationError({"amount": "The amount to refund must be more than zero."})
        refund_lines = None
    if wanted > held:
        raise ValidationError({"amount": f"{wanted} is more than the {held} received on {sale.number} and not yet "
                                         "given back."})
    creditable = selectors.sale_amount_creditable(sale)
    if wanted > creditable:
        raise ValidationError({"amount": f"{wanted} is more than the {creditable} left to credit on {sale.number}."})
    if not payment_method.active:
        raise ValidationError({"payment_method": f"{payment_method} is not active."})
    if refund_lines is None:
        refund_lines = _refund_lines(sale, amount=wanted)
    return _refund_write(sale, method=payment_method, allocated=totals.ZERO, lines=refund_lines, reason=reason)


# --- receipts ---------------------------------------------------------------------------------------


def _money_of(receipt: Receipt) -> tuple:
    return receipt.sale_id, receipt.amount, receipt.overpayment_allowed


def _check_receipts_fit(sale: Sale, judged: list[Receipt], *, leaving: set[int]) -> None:
    """Receipts only on confirmed sales, and together no more than is due unless overpayment is allowed.
    `judged` are the new receipts and those whose money changed; `leaving` the ids of receipts that go."""
    if sale.status != Sale.Status.CONFIRMED:
        raise ValidationError(
            f"Receipts can only be taken on confirmed sales; {sale.number} is {sale.get_status_display().lower()}."
        )
    for receipt in judged:
        if receipt.pk is None and not receipt.payment_method.active:
            raise ValidationError({"payment_method": f"{receipt.payment_method} is not active."})
    due = sale_amount_due(sale, excluding_receipts={receipt.pk for receipt in judged} | leaving)
    amount = sum((receipt.amount for receipt in judged), Decimal("0"))
    if amount <= due or any(receipt.overpayment_allowed for receipt in judged):
        return
    if len(judged) == 1:
        raise ValidationError({"amount": f"{amount} is more than the {due} still due on {sale.number}. "
                                         "Tick 'overpayment allowed' to accept it anyway."})
    raise ValidationError(f"These receipts add up to {amount}, more than the {due} still due on {sale.number}. "
                          "Tick 'overpayment allowed' to accept it anyway.")


@transaction.atomic
def receipts_save(
    *,
    sale: Sale,
    record: Iterable[Mapping[str, Any]] = (),
    change: Iterable[tuple[Receipt, Mapping[str, Any]]] = (),
    remove: Iterable[Receipt] = (),
) -> list[Receipt]:
    """Record new receipts on `sale`, change receipts (moving them to `sale` if they were on another) and
    remove some of its receipts, all judged together: each alone may fit under the amount due while
    together they overpay. A changed receipt whose sale, amount and overpayment choice stay as they were
    is not judged again: the sale may since have been cancelled or paid in Xero, and that must not block
    editing its note. Returns the recorded receipts, then the changed ones."""
    # Lock the sale first, and read what is due only after: a receipt another transaction is recording
    # on it is then either committed (and counted) or waits for this one.
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    record, change, remove = list(record), list(change), list(remove)
    stored = {receipt.pk: receipt for receipt in Receipt.objects.select_for_update().filter(
        pk__in=[receipt.pk for receipt, _ in change])}
    recorded, changed, judged = [], [], []
    for fields in record:
        _reject_unknown(fields, RECEIPT_FIELDS, "receipt")
        receipt = Receipt(sale=sale, **fields)
        recorded.append(receipt)
        judged.append(receipt)
    for receipt, fields in change:
        _reject_unknown(fields, RECEIPT_FIELDS, "receipt")
        if receipt.pk not in stored:
            raise ValidationError(f"Receipt {receipt.pk} was deleted meanwhile; reload the page.")
        receipt = stored[receipt.pk]
        money_before = _money_of(receipt)
        receipt.sale = sale
        for name, value in fields.items():
            setattr(receipt, name, value)
        changed.append(receipt)
        if _money_of(receipt) != money_before:
            judged.append(receipt)
    errors = {}
    for number, receipt in enumerate([*recorded, *changed], start=1):
        try:
            receipt.full_clean()
        except ValidationError as error:
            if len(record) + len(change) == 1:
                raise
            errors[f"receipt {number}"] = ValidationError(" ".join(error.messages))
    if errors:
        raise ValidationError(errors)
    leaving = {receipt.pk for receipt in remove}
    if judged:
        _check_receipts_fit(sale, judged, leaving=leaving)
    if leaving:
        Receipt.objects.filter(sale=sale, pk__in=leaving).delete()
    for receipt in [*changed, *recorded]:  # saved one by one: each save is what the Xero sync records
        receipt.save()
    return [*recorded, *changed]


def receipt_record(
    *,
    sale: Sale,
    payment_method: PaymentMethod,
    amount: Decimal,
    date: datetime.date | None = None,
    reference: str = "",
    overpayment_allowed: bool = False,
) -> Receipt:
    fields = {"payment_method": payment_method, "amount": amount, "reference": reference,
              "overpayment_allowed": overpayment_allowed}
    if date is not None:
        fields["date"] = date
    [receipt] = receipts_save(sale=sale, record=[fields])
    return receipt


def receipt_update(*, receipt: Receipt, sale: Sale | None = None, **fields: Any) -> Receipt:
    """Change a receipt; with `sale`, move it to that sale (judged there)."""
    [updated] = receipts_save(sale=sale or receipt.sale, change=[(receipt, fields)])
    return updated


# --- what the accounts deleted ----------------------------------------------------------------------


@transaction.atomic
def removed_in_books_set(*, record: Receipt | Refund, removed: bool) -> Receipt | Refund:
    """Say whether the accounts deleted the payment a receipt (or a refund's money paid back) became: while
    deleted it no longer counts in the sale's money, as the books no longer hold it. Cleared when staff
    send it again."""
    record = type(record).objects.select_for_update().get(pk=record.pk)
    if (record.removed_in_books_at is not None) != removed:
        record.removed_in_books_at = timezone.now() if removed else None
        record.save(update_fields=["removed_in_books_at", "updated_at"])
    return record


# --- payment methods --------------------------------------------------------------------------------


@transaction.atomic
def payment_method_create(*, name: str, code: str, active: bool = True) -> PaymentMethod:
    method = PaymentMethod(name=name, code=code, active=active)
    method.full_clean()
    method.save()
    return method


@transaction.atomic
def payment_method_update(*, method: PaymentMethod, **fields: Any) -> PaymentMethod:
    return _save_fields(method, fields, allowed=PAYMENT_METHOD_FIELDS, what="payment method")
