"""What a sync run needs to know of the staff's settings, read once when the run starts.

Frozen: every stage of the run maps with the same accounts and tax types, and no stage sets any of it
as a side effect of another.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from ..models import PaymentMethodConfig, TaxMapping, XeroConnection
from ..selectors import pushing_payment_accounts
from .configuration import sync_settings


@dataclass(frozen=True)
class RunConfig:
    sales_account: str
    shipping_account: str
    tax_types: Mapping[str, str]  # website tax code -> Xero tax type
    tax_rates: Mapping[str, Decimal]  # Xero tax type -> its effective rate, as Xero states it
    payment_accounts: Mapping[int, str]  # pushing payment method id -> the Xero account it pays into
    pulling_accounts: Mapping[str, int]  # Xero account code -> the pulling payment method its payments become


def run_config_build(connection: XeroConnection) -> RunConfig:
    settings_row = sync_settings()
    sales_account = settings_row.default_sales_account_code
    pulling = PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PULL).exclude(
        xero_account_code="")
    return RunConfig(
        sales_account=sales_account,
        shipping_account=settings_row.shipping_account_code or sales_account,
        tax_types=MappingProxyType(dict(TaxMapping.objects.values_list("tax_code", "xero_tax_type"))),
        tax_rates=MappingProxyType({
            rate["TaxType"]: Decimal(rate["EffectiveRate"]) for rate in connection.tax_rates_cache
            if rate.get("EffectiveRate") not in (None, "", "None")}),
        payment_accounts=MappingProxyType(pushing_payment_accounts()),
        pulling_accounts=MappingProxyType(dict(pulling.values_list("xero_account_code", "payment_method_id"))),
    )
