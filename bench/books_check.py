"""Seconds for the books check of one month of N sales, and of 12 months of M, on the local copies (the
check makes no Xero call). Sales, lines, card receipts, Xero links and the pulled copies of their invoices
are written in bulk as a year of synced trade would leave them; one sale in a thousand differs (its Xero
copy was edited), so the check has differences to find and word.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch> python bench/books_check.py [--month-sales 10000] \
        [--year-sales 100000]

Without DATABASE_URL it runs on a SQLite file under var/bench/ (the figures that matter are PostgreSQL's).
"""

import argparse
import datetime
import time
import uuid
from decimal import Decimal

from common import bulk_orders, report, setup_django


def month_after(month: datetime.date) -> datetime.date:
    return (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)

BATCH = 5000


def seed(count: int, *, first: datetime.date, months: int) -> None:
    """`count` synced, paid sales spread evenly over `months` whole months from `first`, in bulk (numbered on
    from the sales already written)."""
    from django.db import transaction
    from django.utils import timezone

    from ecommerce.models import Invoice, PaymentMethod
    from xero_sync.models import PaymentMethodConfig, RecordKind, XeroConnection, XeroLink

    connection = XeroConnection.objects.filter(is_current=True).first()
    tenant = connection.tenant_id if connection else uuid.uuid4()
    if connection is None:
        XeroConnection.objects.create(tenant_id=tenant, tenant_name="Bench Ltd", is_current=True,
                                      token_ciphertext=b"", connected_at=timezone.now())
    card, _ = PaymentMethod.objects.get_or_create(code="card", defaults={"name": "Card"})
    PaymentMethodConfig.objects.update_or_create(payment_method=card, defaults={"direction": "push",
                                                                               "xero_account_code": "620"})
    now = timezone.now()
    end = first
    for _ in range(months):
        end = month_after(end)
    days = (end - first).days
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        dates = [first + datetime.timedelta(days=((start + i) * days) // count) for i in range(size)]
        with transaction.atomic():
            # not queued: the links written below say these sales are in Xero already
            sales = bulk_orders(size, start=start, dates=dates, queue_for_xero=False)
            invoices = Invoice.objects.bulk_create(
                Invoice(xero_id=uuid.uuid4(), number=sale.number, contact=sale.contact, sale=sale,
                        status=Invoice.Status.PAID, date=sale.date, currency="NZD", line_amount_type="inclusive",
                        subtotal=Decimal("76.87"), total_tax=Decimal("11.53"),
                        # one in a thousand edited in Xero after it was pushed
                        total=Decimal("87.40") if (start + i) % 1000 == 999 else Decimal("88.40"),
                        amount_due=Decimal("0.00"), amount_paid=Decimal("88.40"), updated_in_xero_at=now)
                for i, sale in enumerate(sales))
            XeroLink.objects.bulk_create(
                XeroLink(tenant_id=tenant, kind=RecordKind.SALE, local_id=sale.pk, xero_id=invoice.xero_id,
                         xero_key=sale.number, state=XeroLink.State.SYNCED,
                         last_pushed_at=now - datetime.timedelta(hours=1))
                for sale, invoice in zip(sales, invoices, strict=True))


def timed(check, *, tenant, months) -> tuple[float, int, int]:
    started = time.perf_counter()
    sales = differences = 0
    for month in months:
        for result in check(tenant_id=tenant, month=month):
            sales += result.sales
            differences += len(result.differences)
    return time.perf_counter() - started, sales, differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--month-sales", type=int, default=10_000)
    parser.add_argument("--year-sales", type=int, default=100_000)
    args = parser.parse_args()
    setup_django("books_check")
    from django.db import connection as database

    from xero_sync.models import XeroConnection
    from xero_sync.services.books_check import books_check, months_back

    # the last whole month holds the month's sales; the eleven before it the rest of the year's
    year = months_back(13)[1:]
    started = time.perf_counter()
    seed(args.month_sales, first=year[0], months=1)
    tenant = XeroConnection.objects.get(is_current=True).tenant_id
    month_seconds, month_sales, month_differences = timed(books_check, tenant=tenant, months=year[:1])
    seed(args.year_sales - args.month_sales, first=year[-1], months=11)
    seeded = time.perf_counter() - started
    year_seconds, year_sales, year_differences = timed(books_check, tenant=tenant, months=year)
    figures = {
        "database": database.vendor, "month_sales": month_sales, "month_seconds": round(month_seconds, 2),
        "month_differences": month_differences, "year_sales": year_sales, "year_seconds": round(year_seconds, 2),
        "year_differences": year_differences, "seed_seconds": round(seeded, 1),
    }
    report(f"Books check on {database.vendor}", [
        ("", "sales checked", "seconds", "differences found"),
        ("one month", month_sales, f"{month_seconds:.2f}", month_differences),
        ("twelve months", year_sales, f"{year_seconds:.2f}", year_differences),
    ], figures)


if __name__ == "__main__":
    main()
