"""The staff's sync choices: auto-sync and its timing, default accounts, tax mapping, and per payment
method which side owns its payments. The settings page and `manage.py xero_sync configure` both write
through these functions, so both validate alike.

Account codes and tax types are checked against the organisation's own chart, fetched from Xero and
cached on the connection (refreshed on demand), so a code the organisation does not have is refused here
rather than by Xero at push time.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ecommerce.models import PaymentMethod

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
    """Map a website tax code to a Xero tax type; an empty tax type removes the mapping."""
    tax_code, xero_tax_type = tax_code.strip(), xero_tax_type.strip()
    if not tax_code:
        raise ValidationError({"tax_code": "Give the website tax code to map, e.g. GST."})
    if not xero_tax_type:
        TaxMapping.objects.filter(tax_code=tax_code).delete()
        return None
    _check_code(xero_tax_type, revenue_tax_types(connection_current()), "TaxType", "xero_tax_type", "tax type")
    mapping, _ = TaxMapping.objects.update_or_create(tax_code=tax_code, defaults={"xero_tax_type": xero_tax_type})
    return mapping
