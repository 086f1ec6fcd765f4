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
  two rows of one form) cannot each fit under the same amount due.
"""

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from . import totals
from .models import Contact, NumberSequence, PaymentMethod, Receipt, Sale, SaleLine
from .selectors import sale_amount_due
from .signals import sale_lines_replaced

SALE_NUMBER_SEQUENCE = "sale"
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


def _sale_number_next() -> str:
    # The UPDATE takes the counter row's lock until the caller's transaction ends, so concurrent sales get
    # distinct, gapless numbers, and a sale refused later in that transaction gives its number back.
    counter = NumberSequence.objects.filter(name=SALE_NUMBER_SEQUENCE)
    if not counter.update(last_value=F("last_value") + 1):
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                NumberSequence.objects.create(name=SALE_NUMBER_SEQUENCE)
        except IntegrityError:
            pass
        counter.update(last_value=F("last_value") + 1)
    return f"S-{counter.get().last_value:06d}"


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


@transaction.atomic
def sale_cancel(*, sale: Sale) -> Sale:
    """Cancel a sale. What is already in Xero stays there: a cancellation is not pushed as a void."""
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    sale.status = Sale.Status.CANCELLED
    sale.save(update_fields=["status", "updated_at"])
    return sale


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
