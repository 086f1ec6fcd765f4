"""Shared set-up for the benchmarks: a fresh database, a running emulator, a connected, configured shop.

Each benchmark prints a table and one JSON line, so a person reads the table and a script the JSON.
Runs on a fresh SQLite file under var/bench/ by default, or on PostgreSQL/Redis when DATABASE_URL /
REDIS_URL are set (the database is then emptied first: point it at a scratch database).
"""

import contextlib
import json
import os
import platform
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def setup_django(name: str) -> None:
    if not os.environ.get("DATABASE_URL"):
        folder = REPO / "var" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        database = folder / f"{name}.sqlite3"
        database.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "false")  # no per-query debug bookkeeping in the figures
    import django

    django.setup()
    from django.core.management import call_command

    if "sqlite" not in os.environ["DATABASE_URL"]:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)


@contextlib.contextmanager
def connected_shop(**emulator_options):
    """A running emulator and the shop connected to its Demo Company, configured like a real shop."""
    from django.conf import settings

    from ecommerce.models import PaymentMethod
    from xero_emulator.testing import running_emulator
    from xero_sync import client
    from xero_sync.services import configuration
    from xero_sync.services.connection import _connection_activate

    with running_emulator(**emulator_options) as emulator:
        settings.XERO_SYNC_NUDGE = False
        for name, value in {"XERO_AUTHORIZE_URL": emulator.authorize_url, "XERO_TOKEN_URL": emulator.token_url,
                            "XERO_REVOKE_URL": emulator.revocation_url, "XERO_API_URL": emulator.api_url,
                            "XERO_CONNECTIONS_URL": emulator.connections_url,
                            "XERO_CLIENT_ID": "emulator-client", "XERO_CLIENT_SECRET": "emulator-secret"}.items():
            setattr(settings, name, value)
        token = client.normalise_token(emulator.issue_token())
        connection = _connection_activate(
            tenant={"tenantId": emulator.default_tenant_id, "tenantName": "Demo Company (NZ)"}, token=token,
            user=None)
        configuration.chart_refresh(connection=connection)
        configuration.sync_settings_update(default_sales_account_code="200", shipping_account_code="205")
        configuration.tax_mapping_set(tax_code="GST", xero_tax_type="OUTPUT2")
        card = PaymentMethod.objects.get_or_create(code="card", defaults={"name": "Card"})[0]
        configuration.payment_method_configure(payment_method=card, direction="push", account_code="620")
        emulator.reset_calls()
        yield emulator


def accounting_calls(emulator) -> list[dict]:
    return [call for call in emulator.calls if call["path"].startswith("/api.xro/")]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(title: str, rows: list[tuple], figures: dict) -> None:
    width = max(len(str(row[0])) for row in rows)
    print(f"\n{title}  ({machine()}, {datetime.now(UTC):%Y-%m-%d})")
    for label, *values in rows:
        print(f"  {str(label).ljust(width)}  " + "  ".join(str(value) for value in values))
    print(json.dumps({"benchmark": title, "machine": machine(), "date": f"{datetime.now(UTC):%Y-%m-%d}",
                      **figures}))


def bulk_orders(count: int, *, start: int = 0, days_back: int = 0, dates: list[date] | None = None,
                queue_for_xero: bool = True) -> list:
    """`count` orders (a new contact, a confirmed two-line sale, a card receipt each), written in bulk as an
    importer would, and recorded for Xero with outbox_record_many (bulk writes send no signals); returns the
    sales. The sales are dated `dates` (one per order), else spread over the `days_back` days before today.
    `queue_for_xero=False` leaves the outbox alone, for a caller that writes the orders as already synced."""
    import datetime
    from decimal import Decimal

    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from ecommerce.models import Contact, NumberSequence, PaymentMethod, Receipt, Sale, SaleLine
    from xero_sync.models import RecordKind
    from xero_sync.services.outbox import outbox_record_many

    card = PaymentMethod.objects.get(code="card")
    if dates is None:
        today = timezone.localdate()
        dates = [today - datetime.timedelta(days=(i * days_back) // max(count, 1)) for i in range(count)]
    with transaction.atomic():
        NumberSequence.objects.get_or_create(name="sale")
        first = NumberSequence.objects.get(name="sale").last_value
        NumberSequence.objects.filter(name="sale").update(last_value=F("last_value") + count)
        contacts = Contact.objects.bulk_create(
            Contact(first_name="Customer", last_name=f"No {start + i}", email=f"c{start + i}@example.com")
            for i in range(count))
        sales = Sale.objects.bulk_create(
            Sale(number=f"S-{first + i + 1:06d}", contact=contact, status=Sale.Status.CONFIRMED,
                 date=dates[i], currency="NZD", line_amount_type="inclusive")
            for i, contact in enumerate(contacts))
        SaleLine.objects.bulk_create(
            line for sale in sales for line in (
                SaleLine(sale=sale, position=1, description="Merino beanie", quantity=Decimal("2"),
                         unit_amount=Decimal("39.95"), tax_rate=Decimal("15"), tax_code="GST"),
                SaleLine(sale=sale, position=2, kind="shipping", description="Courier", quantity=Decimal("1"),
                         unit_amount=Decimal("8.50"), tax_rate=Decimal("15"), tax_code="GST")))
        receipts = Receipt.objects.bulk_create(
            Receipt(sale=sale, payment_method=card, amount=Decimal("88.40"), date=sale.date,
                    reference=f"ch_{sale.pk}") for sale in sales)
        if queue_for_xero:
            outbox_record_many(RecordKind.CONTACT, [contact.pk for contact in contacts])
            outbox_record_many(RecordKind.SALE, [sale.pk for sale in sales])
            outbox_record_many(RecordKind.RECEIPT, [receipt.pk for receipt in receipts])
    return sales


def orders_through_services(count: int, *, lines: list[dict], paid: Decimal) -> None:
    """`count` orders made one at a time as staff make them (a new contact, a confirmed sale of `lines`, a
    card receipt of `paid` each), so every save sends its signals and records itself for Xero."""
    from ecommerce import services
    from ecommerce.models import PaymentMethod

    card = PaymentMethod.objects.get(code="card")
    for index in range(count):
        contact = services.contact_create(first_name="Customer", last_name=f"No {index}",
                                          email=f"customer{index}@example.com")
        sale = services.sale_create(contact=contact, confirm=True, lines=lines)
        services.receipt_record(sale=sale, payment_method=card, amount=paid, reference=f"ch_{index}")


def one_call_per_record_gateway(emulator, tenant_id: str):
    """The gateway a plugin that writes each record on its own would use: ours, with a token of its own for
    `tenant_id`, so its calls are counted apart from the shop's (gateway.calls_made)."""
    from xero_sync.client import AccountingGateway

    token = emulator.issue_token(tenant_ids=[tenant_id])["access_token"]
    return AccountingGateway(tenant_id=tenant_id, access_token=lambda: token)


def push_everything(**sync_options) -> int:
    """Run syncs until nothing is left to push (a run stops at its time budget); returns the runs."""
    from xero_sync.models import OutboxEntry
    from xero_sync.services.sync import sync_run

    runs = 0
    while OutboxEntry.objects.exists():
        run = sync_run(trigger="command", force=True, pull=False, **sync_options)
        runs += 1
        if run is None or runs > 10_000:
            raise RuntimeError("the push stopped making progress")
    return runs


def push_until_idle() -> int:
    """Run syncs until one pushes nothing (what is left, if anything, keeps failing); returns the runs."""
    from xero_sync.services.sync import sync_run

    runs = 0
    while True:
        run = sync_run(trigger="command", force=True, pull=False)
        runs += 1
        if run is None or not run.pushed:
            return runs
