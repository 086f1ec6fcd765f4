"""The books check: month by month, whether the website's ledger and Xero's agree, and each difference as
one line a bookkeeper reads, with the record that causes it.

It reads only the local copies (the website's sales, receipts and refunds; the pulled copies of Xero's
invoices, credit notes and payments), so checking costs no Xero call; `books_check_fresh` first fetches a
month's invoices and credit notes from Xero again (xero_sync.services.sync).

A difference is *explained* when it is expected and already shown where staff look: a record still waiting
for its run (inside the quiet period), an invoice locked in Xero, a conflict the sale shows. Everything else
is *unexplained*: a refusal left unresolved, an invoice edited or voided in Xero, a payment deleted there,
money in Xero the website does not know.
"""

import dataclasses
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from ecommerce import totals
from ecommerce.models import CreditNote, Invoice, Payment, Receipt, Refund, Sale, SaleLine

from ..models import OutboxEntry, PaymentMethodConfig, RecordKind, XeroLink
from ..selectors import refunds_for_xero, sales_for_xero
from .links import xero_web_url

ZERO = Decimal("0.00")
State = XeroLink.State
WAITING_STATES = (State.PENDING, State.IN_FLIGHT)
SHOWN_STATES = (State.LOCKED, State.CONFLICT)


@dataclass(frozen=True)
class Difference:
    """One line of the check: what differs, in words, which record, and whether it is explained."""

    key: str  # stable: the record and what differs, so the digest tells a new one once
    words: str
    explained: bool
    record: str  # as staff know it: S-000123, CN-000004, WEB-R000017
    website_url: str | None = None
    xero_url: str | None = None
    link_id: int | None = None


@dataclass
class MonthCheck:
    month: datetime.date  # the first day, in the shop's time zone
    currency: str
    sales: int = 0
    invoiced: Decimal = ZERO
    paid: Decimal = ZERO
    refunded: Decimal = ZERO
    in_xero: int = 0
    in_xero_total: Decimal = ZERO
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Difference]:
        return [difference for difference in self.differences if not difference.explained]

    @property
    def agrees(self) -> bool:
        return not self.unexplained


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def month_after(month: datetime.date) -> datetime.date:
    return (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def months_back(count: int, *, today: datetime.date | None = None) -> list[datetime.date]:
    """The last `count` months, newest first, the current one included."""
    month = month_start(today or timezone.localdate())
    months = []
    for _ in range(count):
        months.append(month)
        month = month_start(month - datetime.timedelta(days=1))
    return months


class InvoiceRow:
    """What the check reads of a pulled invoice."""

    __slots__ = ("xero_id", "sale_id", "status", "total", "amount_paid", "amount_credited", "updated_in_xero_at")
    FIELDS = __slots__

    def __init__(self, *values):
        for name, value in zip(self.FIELDS, values, strict=True):
            setattr(self, name, value)


class LinkRow:
    """What the check reads of a link: read as plain values, not as models, ten thousand at a time."""

    __slots__ = ("pk", "local_id", "state", "last_error", "xero_id", "last_pushed_at")
    FIELDS = __slots__

    def __init__(self, *values):
        for name, value in zip(self.FIELDS, values, strict=True):
            setattr(self, name, value)

    def get_state_display(self) -> str:
        return State(self.state).label


def _admin_url(name: str, pk: int) -> str:
    return reverse(f"admin:ecommerce_{name}_change", args=[pk])


def _sale_totals(month_sales, amount_types: dict[int, str]) -> dict[int, totals.Totals]:
    """Each sale's totals from its lines, by Xero's per-line rounding: one query for all the month's lines."""
    figures = defaultdict(list)
    for sale_id, quantity, unit_amount, discount_rate, tax_rate in SaleLine.objects.filter(
            sale_id__in=month_sales.values("pk")).values_list(
            "sale_id", "quantity", "unit_amount", "discount_rate", "tax_rate").iterator(chunk_size=10_000):
        figures[sale_id].append(totals.line_figures(quantity=quantity, unit_amount=unit_amount,
                                                    discount_rate=discount_rate, tax_rate=tax_rate,
                                                    line_amount_type=amount_types[sale_id]))
    return {sale_id: totals.sale_totals(figures[sale_id], line_amount_type=amount_type)
            for sale_id, amount_type in amount_types.items()}


def _links(tenant_id, kind: RecordKind, local_ids) -> dict[int, LinkRow]:
    """`local_ids`: a queryset of ids (a subquery: no list of ten thousand ids in the SQL) or a list."""
    return {row.local_id: row for row in (LinkRow(*values) for values in XeroLink.objects.filter(
        tenant_id=tenant_id, kind=kind, local_id__in=local_ids).values_list(*LinkRow.FIELDS))}


def _queued(kind: RecordKind, local_ids) -> set[int]:
    return set(OutboxEntry.objects.filter(kind=kind, local_id__in=local_ids).values_list("local_id", flat=True))


def _why_not_in_xero(link: XeroLink | None, queued: bool, *, in_xero: bool = False) -> tuple[str, bool]:
    """Why a record is not (yet) as Xero holds it, and whether that is explained. `in_xero`: Xero holds the
    record already, so a link that is synced (or none at all) is no reason of the sync's: ("", False), and
    what differs was done in Xero."""
    if queued or (link is not None and link.state in WAITING_STATES):
        return "waiting for its sync run", True
    if in_xero and (link is None or link.state == State.SYNCED):
        return "", False
    if link is None:
        return "not sent to Xero and not queued", False
    if link.state in SHOWN_STATES:
        return f"{link.get_state_display().lower()}, shown on the record: {link.last_error}", True
    if link.state in (State.ERROR, State.DEAD):
        return f"not synced: {link.last_error}", False
    return link.get_state_display().lower(), False


def books_check(*, tenant_id, month: datetime.date) -> list[MonthCheck]:
    """The check of one month (the shop's), one MonthCheck per currency the month's sales are in."""
    month = month_start(month)
    end = month_after(month)
    # The month's sales as a subquery: every read below joins on it, rather than sending ten thousand ids.
    month_sales = Sale.objects.filter(date__gte=month, date__lt=end).exclude(status=Sale.Status.DRAFT)
    month_ids = month_sales.values("pk")
    sales = list(month_sales.values_list("pk", "number", "status", "currency", "line_amount_type"))
    sale_totals = _sale_totals(month_sales, {pk: amount_type for pk, _, _, _, amount_type in sales})
    sale_links = _links(tenant_id, RecordKind.SALE, month_ids)
    # Cancelled ones whose money went through Xero go even if they had not reached it (selectors)
    cancelled_for_xero = set(month_sales.filter(sales_for_xero(), status=Sale.Status.CANCELLED).values_list(
        "pk", flat=True))
    queued = _queued(RecordKind.SALE, month_ids)
    invoices = {row[1]: InvoiceRow(*row) for row in Invoice.objects.filter(sale_id__in=month_ids).exclude(
        status=Invoice.Status.DELETED).values_list(*InvoiceRow.FIELDS)}
    pushing = set(PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PUSH)
                  .values_list("payment_method_id", flat=True))
    paid_for_xero, paid_on_website = defaultdict(lambda: ZERO), defaultdict(lambda: ZERO)
    receipts = list(Receipt.objects.filter(sale_id__in=month_ids).values_list(
        "pk", "sale_id", "amount", "payment_method_id", "removed_in_books_at"))
    for _, sale_id, amount, method_id, removed in receipts:
        if removed is None:
            paid_on_website[sale_id] += amount
            if method_id in pushing:
                paid_for_xero[sale_id] += amount
    for sale_id, amount in Payment.objects.filter(sale_id__in=month_ids, status=Payment.Status.ACTIVE,
                                                  credit_note__isnull=True).values_list("sale_id", "amount"):
        paid_for_xero[sale_id] += amount
        paid_on_website[sale_id] += amount
    allocated = defaultdict(lambda: ZERO)
    for sale_id, amount in Refund.objects.filter(sale_id__in=month_ids).values_list("sale_id", "amount_allocated"):
        allocated[sale_id] += amount
    for sale_id, amount in CreditNote.objects.filter(
            refund__isnull=True, status__in=(CreditNote.Status.AUTHORISED, CreditNote.Status.PAID),
            allocations__sale_id__in=month_ids).values_list("allocations__sale_id", "allocations__amount"):
        allocated[sale_id] += amount

    checks: dict[str, MonthCheck] = {}

    def check_for(currency: str) -> MonthCheck:
        return checks.setdefault(currency, MonthCheck(month=month, currency=currency))

    for pk, number, status, currency, _ in sales:
        check = check_for(currency)
        total = sale_totals[pk].total
        link, invoice = sale_links.get(pk), invoices.get(pk)
        check.sales += 1
        check.invoiced += total if status == Sale.Status.CONFIRMED else ZERO
        check.paid += paid_on_website[pk]
        if invoice is not None and invoice.status != Invoice.Status.VOIDED:
            check.in_xero += 1
            check.in_xero_total += invoice.total
        for difference in _sale_differences(number, status, total, link, invoice, pk in queued,
                                            paid_for_xero[pk], allocated[pk], pk in cancelled_for_xero):
            # the links only for what differs: building ten thousand URLs costs more than the whole check
            check.differences.append(dataclasses.replace(
                difference, website_url=_admin_url("sale", pk), link_id=link.pk if link else None,
                xero_url=xero_web_url(kind=RecordKind.SALE, xero_id=invoice.xero_id, tenant_id=tenant_id)
                if invoice else None))
    _check_refunds(tenant_id, month, end, check_for)
    _check_receipts_deleted(tenant_id, Receipt.objects.filter(sale_id__in=month_ids).values("pk"),
                            {pk: sale_id for pk, sale_id, *_ in receipts},
                            {pk: (number, currency) for pk, number, _, currency, _ in sales}, check_for)
    return sorted(checks.values(), key=lambda check: check.currency)


def _sale_differences(number, status, total, link, invoice, queued, paid_for_xero, allocated, cancelled_for_xero):
    key = f"sale:{number}"
    if invoice is None:
        if status == Sale.Status.CANCELLED and not (link and link.xero_id) and not cancelled_for_xero:
            return  # cancelled before it ever reached Xero, no money through Xero: nothing to agree on
        why, explained = _why_not_in_xero(link, queued)
        yield Difference(f"{key}:missing", f"{number}: website {total}, not in Xero — {why}", explained, number)
        return
    waiting = queued or (link is not None and link.state in WAITING_STATES)
    if status == Sale.Status.CANCELLED:
        settled_by_credit = allocated > 0 or paid_for_xero > 0
        if invoice.status != Invoice.Status.VOIDED and not settled_by_credit:
            why, explained = _why_not_in_xero(link, queued, in_xero=True)
            yield Difference(f"{key}:not-voided", f"{number}: cancelled on the website, invoice still "
                                                  f"{invoice.status} in Xero" + (f" — {why}" if why else ""),
                             explained, number)
        return
    if invoice.status == Invoice.Status.VOIDED:
        yield Difference(f"{key}:voided", f"{number}: confirmed on the website, invoice VOIDED in Xero on "
                                          f"{timezone.localdate(invoice.updated_in_xero_at):%-d %B %Y}",
                         False, number)
        return
    edited = (link is not None and link.last_pushed_at is not None
              and invoice.updated_in_xero_at > link.last_pushed_at)
    when = f"{timezone.localdate(invoice.updated_in_xero_at):%-d %B}"
    if invoice.total != total:
        if waiting or (link is not None and link.state in SHOWN_STATES + (State.ERROR, State.DEAD)):
            why, explained = _why_not_in_xero(link, queued)
        elif edited:
            why, explained = f"Xero's invoice edited on {when}", False
        else:
            why, explained = "Xero's total differs", False
        yield Difference(f"{key}:total", f"{number}: website {total}, Xero {invoice.total} — {why}", explained,
                         number)
    if invoice.amount_paid != paid_for_xero:
        if waiting:
            why, explained = "a receipt waiting for its sync run", True
        elif invoice.amount_paid > paid_for_xero:
            why, explained = "a payment in Xero the website does not know", False
        else:
            why, explained = "a receipt the website took is not in Xero", False
        yield Difference(f"{key}:paid", f"{number}: paid on the website {paid_for_xero}, in Xero "
                                        f"{invoice.amount_paid} — {why}", explained, number)
    if invoice.amount_credited != allocated:
        yield Difference(f"{key}:credited", f"{number}: credited on the website {allocated}, in Xero "
                                            f"{invoice.amount_credited}", waiting, number)


def _check_refunds(tenant_id, month, end, check_for) -> None:
    month_refunds = Refund.objects.filter(date__gte=month, date__lt=end)
    refunds = list(month_refunds.values_list(
        "pk", "number", "credit_total", "amount_refunded", "amount_allocated", "payment_method_id",
        "removed_in_books_at", "sale__currency"))
    # A refund the push leaves out (its sale, cancelled before it reached Xero, sends nothing) counts in
    # the website's figures, but has nothing in Xero to agree with.
    for_xero = set(month_refunds.filter(refunds_for_xero(tenant_id)).values_list("pk", flat=True))
    ids = [pk for pk, *_ in refunds]
    links = _links(tenant_id, RecordKind.REFUND, ids)
    payment_links = _links(tenant_id, RecordKind.REFUND_PAYMENT, ids)
    queued = _queued(RecordKind.REFUND, ids)
    notes = {note.refund_id: note for note in CreditNote.objects.filter(refund_id__in=ids).exclude(
        status=CreditNote.Status.DELETED)}
    pushing = set(PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PUSH)
                  .values_list("payment_method_id", flat=True))
    for pk, number, credit_total, refunded, allocated, method_id, removed, currency in refunds:
        check = check_for(currency)
        check.refunded += refunded if removed is None else ZERO
        link, note, payment_link = links.get(pk), notes.get(pk), payment_links.get(pk)
        urls = {"website_url": _admin_url("refund", pk), "link_id": link.pk if link else None,
                "xero_url": xero_web_url(kind=RecordKind.REFUND, xero_id=note.xero_id, tenant_id=tenant_id)
                if note else None}
        waiting = pk in queued or any(part is not None and part.state in WAITING_STATES
                                      for part in (link, payment_link))
        if note is None and pk not in for_xero:
            continue
        if note is None:
            why, explained = _why_not_in_xero(link, pk in queued)
            check.differences.append(Difference(f"refund:{number}:missing", f"{number}: refund of {credit_total} on "
                                                f"the website, no credit note in Xero — {why}", explained, number,
                                                **urls))
            continue
        if note.status == CreditNote.Status.VOIDED:
            check.differences.append(Difference(f"refund:{number}:voided", f"{number}: credit note VOIDED in Xero, "
                                                "the website still counts the refund", False, number, **urls))
            continue
        if note.total != credit_total:
            check.differences.append(Difference(f"refund:{number}:total", f"{number}: website {credit_total}, Xero "
                                                f"{note.total}", False, number, **urls))
        if payment_link is not None and payment_link.state == State.DELETED:
            check.differences.append(Difference(
                f"refund:{number}:deleted", f"{number}: its refund payment of {refunded} was deleted in Xero — send "
                "it again, or record how the money went back", False, number, **urls))
            continue
        # What Xero should have left of the credit: what was neither allocated nor paid back through Xero (a
        # refund by a method that is not pushed is recorded there by the bookkeeper, and counted when pulled).
        paid_back_in_xero = refunded if method_id in pushing and removed is None else ZERO
        expected_left = credit_total - allocated - paid_back_in_xero
        if method_id in pushing and note.remaining_credit != expected_left:
            check.differences.append(Difference(
                f"refund:{number}:credit-left", f"{number}: {note.remaining_credit} credit left in Xero, the website "
                f"expects {expected_left}" + (" — waiting for its sync run" if waiting else ""), waiting, number,
                **urls))


def _check_receipts_deleted(tenant_id, month_receipts, sale_of, sales, check_for) -> None:
    """Receipts (and refunds) whose Xero payment the bookkeeper deleted: the website no longer counts them,
    but the money the website took is not in the books either."""
    deleted = XeroLink.objects.filter(tenant_id=tenant_id, state=State.DELETED).filter(
        Q(kind=RecordKind.RECEIPT, local_id__in=month_receipts))
    for link in deleted:
        number, currency = sales[sale_of[link.local_id]]
        check_for(currency).differences.append(Difference(
            f"receipt:{link.xero_key or link.local_id}:deleted",
            f"{link.xero_key or 'A receipt'} on {number}: its payment was deleted in Xero — send it again, or "
            "delete the receipt if the money never came", False, link.xero_key or number,
            website_url=_admin_url("receipt", link.local_id), link_id=link.pk))


def books_check_store(*, tenant_id, months: list[datetime.date]) -> list[MonthCheck]:
    """Check these months and keep each month's figures (BooksCheckMonth) for the Books check page; a
    currency the month no longer has is dropped. Returns the checks."""
    from ..models import BooksCheckMonth

    done = []
    now = timezone.now()
    for month in months:
        # a month without sales is kept too (it agrees: nothing to differ), so it is not checked again
        checks = books_check(tenant_id=tenant_id, month=month) or [
            MonthCheck(month=month_start(month), currency=settings.SHOP_CURRENCY)]
        BooksCheckMonth.objects.filter(tenant_id=tenant_id, month=month_start(month)).exclude(
            currency__in=[check.currency for check in checks]).delete()
        for check in checks:
            BooksCheckMonth.objects.update_or_create(
                tenant_id=tenant_id, month=check.month, currency=check.currency, defaults={
                    "sales": check.sales, "invoiced": check.invoiced, "paid": check.paid,
                    "refunded": check.refunded, "in_xero": check.in_xero, "in_xero_total": check.in_xero_total,
                    "differences": len(check.differences), "unexplained": len(check.unexplained),
                    "checked_at": now})
        done.extend(checks)
    return done


BOOKS_DIFFER = "books differ"


def books_check_watch(*, tenant_id, months: list[datetime.date]) -> list[Difference]:
    """Check these months (keeping their figures for the page) and note each unexplained difference not
    noted before in its record's history (action BOOKS_DIFFER), for the hourly digest to tell once; returns
    the newly noted ones."""
    from ..models import SyncEvent

    found = [difference for check in books_check_store(tenant_id=tenant_id, months=months)
             for difference in check.unexplained if difference.link_id]
    noted = set(SyncEvent.objects.filter(action=BOOKS_DIFFER, link_id__in={d.link_id for d in found})
                .values_list("link_id", "detail"))
    new = [difference for difference in found if (difference.link_id, difference.words) not in noted]
    SyncEvent.objects.bulk_create(SyncEvent(link_id=difference.link_id, action=BOOKS_DIFFER, detail=difference.words)
                                  for difference in new)
    return new
