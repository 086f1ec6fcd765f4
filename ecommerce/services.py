"""Every write to the shop goes through here: the admin, the demo seed and the tests call the same code.

Each service validates everything before it writes and runs in one transaction, so a bad input leaves
nothing half-saved.
"""

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from .models import Contact, NumberSequence, PaymentMethod, Receipt, Sale, SaleLine

SALE_NUMBER_SEQUENCE = "sale"
CONTACT_FIELDS = frozenset(
    f.name for f in Contact._meta.concrete_fields if f.name not in {"id", "created_at", "updated_at"}
)
SALE_FIELDS = frozenset({"contact", "date", "due_date", "currency", "line_amount_type", "reference", "notes"})
LINE_FIELDS = frozenset(
    {"kind", "description", "quantity", "unit_amount", "discount_rate", "tax_rate", "tax_code", "account_code",
     "item_code"}
)


def _reject_unknown(fields: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError(f"Unknown {what} field(s): {', '.join(unknown)}.")


@transaction.atomic
def sale_number_next() -> str:
    # The UPDATE takes the counter row's lock until the surrounding transaction ends, so concurrent
    # sales get distinct, gapless numbers.
    counter = NumberSequence.objects.filter(name=SALE_NUMBER_SEQUENCE)
    if not counter.update(last_value=F("last_value") + 1):
        try:
            with transaction.atomic():  # a savepoint: losing the race to create the row is fine
                NumberSequence.objects.create(name=SALE_NUMBER_SEQUENCE)
        except IntegrityError:
            pass
        counter.update(last_value=F("last_value") + 1)
    return f"S-{counter.get().last_value:06d}"


@transaction.atomic
def contact_create(**fields: Any) -> Contact:
    _reject_unknown(fields, CONTACT_FIELDS, "contact")
    contact = Contact(**fields)
    contact.full_clean()
    contact.save()
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, **fields: Any) -> Contact:
    _reject_unknown(fields, CONTACT_FIELDS, "contact")
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    return contact


def _build_lines(sale: Sale, lines: Iterable[Mapping[str, Any]]) -> list[SaleLine]:
    built, errors = [], {}
    for position, line_fields in enumerate(lines, start=1):
        _reject_unknown(line_fields, LINE_FIELDS, "sale line")
        line = SaleLine(sale=sale, position=position, **line_fields)
        try:
            # The field validators say the same as the check constraints, in words staff understand and
            # without a query per constraint per line; the constraints still guard the table.
            line.full_clean(exclude=["sale"], validate_constraints=False)
        except ValidationError as error:
            errors[f"line {position}"] = error.messages
        built.append(line)
    if errors:
        raise ValidationError({key: ValidationError(" ".join(messages)) for key, messages in errors.items()})
    return built


@transaction.atomic
def sale_create(
    *,
    contact: Contact,
    lines: Iterable[Mapping[str, Any]] = (),
    confirm: bool = False,
    **fields: Any,
) -> Sale:
    """Create a draft sale with its lines; with confirm=True confirm it in the same transaction."""
    _reject_unknown(fields, SALE_FIELDS - {"contact"}, "sale")
    sale = Sale(contact=contact, **fields)
    sale.full_clean(exclude=["number"])
    built = _build_lines(sale, lines)
    sale.save()
    for line in built:
        line.sale = sale
    SaleLine.objects.bulk_create(built)
    if confirm:
        sale = sale_confirm(sale=sale)
    return sale


@transaction.atomic
def sale_update(*, sale: Sale, lines: Iterable[Mapping[str, Any]] | None = None, **fields: Any) -> Sale:
    """Change a sale's fields and, when `lines` is given, replace its lines with those."""
    _reject_unknown(fields, SALE_FIELDS, "sale")
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    if sale.status == Sale.Status.CANCELLED:
        raise ValidationError(f"{sale.number} is cancelled and can no longer be changed.")
    for name, value in fields.items():
        setattr(sale, name, value)
    sale.full_clean(exclude=["number"])
    if lines is not None:
        built = _build_lines(sale, lines)
        if not built and sale.status == Sale.Status.CONFIRMED:
            raise ValidationError("A confirmed sale needs at least one line.")
        sale.lines.all().delete()
        for line in built:
            line.save()
    sale.save()
    return sale


@transaction.atomic
def sale_confirm(*, sale: Sale) -> Sale:
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    if sale.status == Sale.Status.CONFIRMED:
        return sale
    if sale.status != Sale.Status.DRAFT:
        raise ValidationError(f"Only a draft sale can be confirmed; {sale.number} is {sale.status}.")
    if not sale.lines.exists():
        raise ValidationError(f"{sale.number} has no lines; add at least one before confirming.")
    sale.status = Sale.Status.CONFIRMED
    sale.save(update_fields=["status", "updated_at"])
    return sale


@transaction.atomic
def sale_cancel(*, sale: Sale) -> Sale:
    """Cancel a sale. What is already in Xero stays there: a cancellation is not pushed as a void."""
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    sale.status = Sale.Status.CANCELLED
    sale.save(update_fields=["status", "updated_at"])
    return sale


@transaction.atomic
def receipt_record(
    *,
    sale: Sale,
    payment_method: PaymentMethod,
    amount: Decimal,
    date: datetime.date | None = None,
    reference: str = "",
    overpayment_allowed: bool = False,
) -> Receipt:
    # Lock the sale so two receipts recorded at once cannot both fit under the same amount due.
    sale = Sale.objects.select_for_update().get(pk=sale.pk)
    receipt = Receipt(
        sale=sale,
        payment_method=payment_method,
        amount=amount,
        reference=reference,
        overpayment_allowed=overpayment_allowed,
    )
    if date is not None:
        receipt.date = date
    receipt.full_clean()
    receipt.save()
    return receipt


@transaction.atomic
def payment_method_create(*, name: str, code: str, active: bool = True) -> PaymentMethod:
    method = PaymentMethod(name=name, code=code, active=active)
    method.full_clean()
    method.save()
    return method
