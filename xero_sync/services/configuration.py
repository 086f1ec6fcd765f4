"""The staff's sync choices: auto-sync and its timing, default accounts, tax mapping, and per payment
method which side owns its payments. The settings page and `manage.py xero_sync configure` both write
through these functions, so both validate alike.

Account codes and tax types are checked against the organisation's own chart, fetched from Xero and
cached on the connection (refreshed on demand), so a code the organisation does not have is refused here
rather than by Xero at push time.
"""

from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection as database
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ecommerce.management.commands.seed_demo import DEMO_REFERENCE_PREFIX
from ecommerce.models import LineAmountType, PaymentMethod, Sale, SaleLine

from ..models import PaymentMethodConfig, SyncSettings, TaxMapping, XeroConnection
from .connection import connection_current, connection_gateway

MIN_DEBOUNCE_SECONDS = 10
MAX_DEBOUNCE_SECONDS = 3600
# A day: longer would hold changes back past the daily run, and far larger numbers overflow the column.
MAX_WAIT_SECONDS = 24 * 3600
REVENUE_TYPES = {"REVENUE", "SALES", "OTHERINCOME"}


def sync_settings() -> SyncSettings:
    found, _ = SyncSettings.objects.get_or_create(
        pk=1,
        defaults={
            "debounce_seconds": settings.XERO_SYNC_DEBOUNCE_SECONDS,
            "max_wait_seconds": settings.XERO_SYNC_MAX_WAIT_SECONDS,
        },
    )
    return found


# --- The organisation's chart ------------------------------------------------------------------------


def chart_refresh(*, connection: XeroConnection) -> XeroConnection:
    """Fetch the organisation's accounts and tax rates (two calls) and cache them on the connection."""
    gateway = connection_gateway(connection)
    accounts = gateway.call("get_accounts").get("Accounts", [])
    tax_rates = gateway.call("get_tax_rates").get("TaxRates", [])
    connection.accounts_cache = [
        {key: account.get(key) for key in ("AccountID", "Code", "Name", "Type", "Status", "EnablePaymentsToAccount")}
        for account in accounts
    ]
    connection.tax_rates_cache = [
        {key: rate.get(key) for key in ("TaxType", "Name", "Status", "CanApplyToRevenue")}
        | {"EffectiveRate": str(rate.get("EffectiveRate", ""))}
        for rate in tax_rates
    ]
    connection.chart_fetched_at = timezone.now()
    connection.save(update_fields=["accounts_cache", "tax_rates_cache", "chart_fetched_at"])
    return connection


def payment_accounts(connection: XeroConnection | None) -> list[dict]:
    """Active accounts that can receive payments: bank accounts and those with payments enabled."""
    return [
        account for account in (connection.accounts_cache if connection else [])
        if account.get("Status") == "ACTIVE" and account.get("Code")
        and (account.get("Type") == "BANK" or account.get("EnablePaymentsToAccount"))
    ]


def revenue_accounts(connection: XeroConnection | None) -> list[dict]:
    return [
        account for account in (connection.accounts_cache if connection else [])
        if account.get("Status") == "ACTIVE" and account.get("Type") in REVENUE_TYPES and account.get("Code")
    ]


def revenue_tax_types(connection: XeroConnection | None) -> list[dict]:
    return [
        rate for rate in (connection.tax_rates_cache if connection else [])
        if rate.get("Status") == "ACTIVE" and rate.get("CanApplyToRevenue", True)
    ]


def _check_code(code: str, known: list[dict], key: str, field: str, what: str) -> None:
    """Refuse a code the organisation does not have. Before the chart is known (not connected yet),
    anything is accepted; the push reports Xero's own message if it is wrong."""
    if not code:
        return
    connection = connection_current()
    if connection is None or connection.chart_fetched_at is None:
        return
    if code not in {entry[key] for entry in known}:
        choices = ", ".join(sorted(f"{entry[key]} ({entry.get('Name', '')})" for entry in known)) or "none"
        raise ValidationError(
            {field: f"{connection.tenant_name} has no {what} {code!r}. Choose one of: {choices}."}
        )


# --- Writes ------------------------------------------------------------------------------------------


@transaction.atomic
def sync_settings_update(
    *,
    auto_sync: bool | None = None,
    debounce_seconds: int | None = None,
    max_wait_seconds: int | None = None,
    default_sales_account_code: str | None = None,
    shipping_account_code: str | None = None,
) -> SyncSettings:
    current = SyncSettings.objects.select_for_update().get(pk=sync_settings().pk)
    changes = {
        "auto_sync": auto_sync, "debounce_seconds": debounce_seconds, "max_wait_seconds": max_wait_seconds,
        "default_sales_account_code": default_sales_account_code, "shipping_account_code": shipping_account_code,
    }
    for name, value in changes.items():
        if value is not None:
            setattr(current, name, value.strip() if isinstance(value, str) else value)
    if not MIN_DEBOUNCE_SECONDS <= current.debounce_seconds <= MAX_DEBOUNCE_SECONDS:
        raise ValidationError({"debounce_seconds": (
            f"The quiet period must be between {MIN_DEBOUNCE_SECONDS} and {MAX_DEBOUNCE_SECONDS} seconds."
        )})
    if current.max_wait_seconds > MAX_WAIT_SECONDS:
        raise ValidationError({"max_wait_seconds": (
            f"The longest wait can be at most {MAX_WAIT_SECONDS} seconds (a day)."
        )})
    if current.max_wait_seconds < current.debounce_seconds:
        raise ValidationError({"max_wait_seconds": "The longest wait cannot be shorter than the quiet period."})
    connection = connection_current()
    _check_code(current.default_sales_account_code, revenue_accounts(connection), "Code",
                "default_sales_account_code", "revenue account")
    _check_code(current.shipping_account_code, revenue_accounts(connection), "Code",
                "shipping_account_code", "revenue account")
    current.save()
    return current


@transaction.atomic
def payment_method_configure(
    *, payment_method: PaymentMethod, direction: str, account_code: str = ""
) -> PaymentMethodConfig:
    account_code = account_code.strip()
    if direction not in PaymentMethodConfig.Direction.values:
        raise ValidationError({"direction": f"Direction must be one of {', '.join(PaymentMethodConfig.Direction.values)}."})
    if direction != PaymentMethodConfig.Direction.NONE and not account_code:
        raise ValidationError({"xero_account_code": (
            f"{payment_method} is set to {direction}: choose the Xero bank or clearing account its payments use."
        )})
    _check_code(account_code, payment_accounts(connection_current()), "Code", "xero_account_code",
                "bank or payment-enabled account")
    config, _ = PaymentMethodConfig.objects.update_or_create(
        payment_method=payment_method, defaults={"direction": direction, "xero_account_code": account_code}
    )
    return config


@transaction.atomic
def tax_mapping_set(*, tax_code: str, xero_tax_type: str) -> TaxMapping | None:
    """Map a website tax code to a Xero tax type; an empty tax type removes the mapping. The blank code
    ("no tax code": lines saved without one) is mapped like any other, since such lines go to Xero too."""
    tax_code, xero_tax_type = tax_code.strip(), xero_tax_type.strip()
    if not xero_tax_type:
        TaxMapping.objects.filter(tax_code=tax_code).delete()
        return None
    _check_code(xero_tax_type, revenue_tax_types(connection_current()), "TaxType", "xero_tax_type", "tax type")
    mapping, _ = TaxMapping.objects.update_or_create(tax_code=tax_code, defaults={"xero_tax_type": xero_tax_type})
    return mapping


# --- Is the organisation set up? ----------------------------------------------------------------------
# Nothing is pushed until every step is done: a half-configured push sends invoices to the wrong account,
# or fails every record at once with the same missing setting.

NO_TAX_CODE = "no tax code"  # how the blank tax code is named to staff


class SetupStep(NamedTuple):
    label: str
    done: bool
    todo: str  # what to do about it; empty once done
    # Whether it still holds every push back once the organisation has been set up (something reached it):
    # a later gap (a new tax code, a new payment method) then fails only the records it concerns, shown on
    # them and here, instead of stopping every other sale.
    holds_after_setup: bool = True


def tax_code_name(code: str) -> str:
    return code or NO_TAX_CODE


def demo_data_withheld() -> bool:
    """seed_demo's records stay on the website when the site talks to a real organisation, unless staff
    set XERO_PUSH_DEMO_DATA: a demo shop's invented customers and sales do not belong in real books."""
    return not settings.XERO_USING_EMULATOR and not settings.XERO_PUSH_DEMO_DATA


def demo_sales() -> Q:
    """The demo's sales (for `Sale` querysets): seed_demo gives each a DEMO- reference."""
    return Q(reference__startswith=DEMO_REFERENCE_PREFIX)


def line_tax_codes() -> list[str]:
    """Every distinct tax code on sale lines, the blank one included, walked along the tax code's index one
    code at a time (a "loose index scan"): a handful of index probes however many lines there are, where
    SELECT DISTINCT reads them all."""
    table, column = database.ops.quote_name(SaleLine._meta.db_table), database.ops.quote_name("tax_code")
    with database.cursor() as cursor:
        cursor.execute(f"""
            WITH RECURSIVE used(code) AS (
                SELECT MIN({column}) FROM {table}
                UNION ALL
                SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > used.code) FROM used
                WHERE used.code IS NOT NULL
            )
            SELECT code FROM used WHERE code IS NOT NULL""")
        return [code for (code,) in cursor.fetchall()]


def tax_codes_unmapped() -> list[str]:
    """Tax codes on lines of confirmed sales that go to Xero, with no Xero tax type yet (a sale without
    tax needs none; the demo's sales count only when they go). One probe per code not mapped."""
    mapped = set(TaxMapping.objects.exclude(xero_tax_type="").values_list("tax_code", flat=True))
    sales = Sale.objects.filter(status=Sale.Status.CONFIRMED).exclude(line_amount_type=LineAmountType.NO_TAX)
    if demo_data_withheld():
        sales = sales.exclude(demo_sales())
    return [code for code in line_tax_codes() if code not in mapped
            and SaleLine.objects.filter(tax_code=code, sale__in=sales).exists()]


def setup_checklist(connection: XeroConnection | None) -> list[SetupStep]:
    """What must be in place before anything is pushed to Xero, in the order staff do it."""
    steps = []
    if connection is not None and connection.status == XeroConnection.Status.ACTIVE:
        steps.append(SetupStep(f"Connected to {connection.tenant_name}", True, ""))
    elif connection is not None:
        steps.append(SetupStep("Connected to Xero", False,
                               f"Reconnect to {connection.tenant_name}: {connection.status_reason}".strip()))
    else:
        steps.append(SetupStep("Connected to Xero", False, "Press Connect to Xero."))

    current = sync_settings()
    if current.default_sales_account_code:
        steps.append(SetupStep(f"Sales account chosen ({current.default_sales_account_code})", True, ""))
    else:
        steps.append(SetupStep("Sales account chosen", False,
                               "Choose the default sales account (Refresh accounts and tax rates from Xero "
                               "first if the list is empty)."))

    unmapped = tax_codes_unmapped()
    steps.append(SetupStep("Tax codes of confirmed sales mapped", not unmapped, (
        f"Map {_and_list([tax_code_name(code) for code in unmapped])} to a Xero tax type." if unmapped else ""),
        holds_after_setup=False))

    configs = {config.payment_method_id: config for config in PaymentMethodConfig.objects.all()}
    undecided, without_account = [], []
    for method in PaymentMethod.objects.filter(active=True).order_by("name"):
        config = configs.get(method.pk)
        if config is None:
            undecided.append(method.name)
        elif config.direction != PaymentMethodConfig.Direction.NONE and not config.xero_account_code:
            without_account.append(f"{method.name} ({config.direction})")
    todo = []
    if undecided:
        todo.append(f"Choose push, pull or neither for {_and_list(undecided)}.")
    if without_account:
        todo.append(f"Choose the Xero account of {_and_list(without_account)}.")
    steps.append(SetupStep("Every active payment method given a direction", not todo, " ".join(todo),
                           holds_after_setup=False))
    return steps


def setup_missing(steps: list[SetupStep], *, set_up_before: bool = False) -> list[str]:
    """What is left to do before anything is pushed, one sentence a step; empty when the organisation is set
    up. `set_up_before`: something has already reached the organisation, so only the steps that still hold
    every push count."""
    return [step.todo for step in steps if not step.done and (step.holds_after_setup or not set_up_before)]


def setup_missing_words(missing: list[str]) -> str:
    """The one sentence a run, the command and the log say when setup holds the push back."""
    return "Nothing is pushed to Xero until the Xero settings are complete: " + " ".join(missing)


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
