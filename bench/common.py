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
from datetime import UTC, datetime
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
