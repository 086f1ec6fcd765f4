"""Xero calls to push N new orders, each with a new contact and a card receipt, next to the calls a
one-call-per-record integration makes for the same data, measured in the same run on the emulator.

    python bench/push.py [--orders 1000]
"""

import argparse
import time
from decimal import Decimal

from common import (
    accounting_calls,
    connected_shop,
    one_call_per_record_gateway,
    orders_through_services,
    push_until_idle,
    report,
    setup_django,
)

ORDER_LINES = [
    {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
     "tax_rate": Decimal("15"), "tax_code": "GST"},
    {"kind": "shipping", "description": "Courier", "unit_amount": Decimal("8.50"),
     "tax_rate": Decimal("15"), "tax_code": "GST"},
]


def push_one_call_per_record(emulator) -> int:
    """What a plugin that writes each record on its own does: a contact, an invoice, a payment per order,
    through the same gateway, against a second organisation so nothing is shared."""
    from ecommerce.models import Sale
    from xero_sync import mappers

    gateway = one_call_per_record_gateway(emulator, emulator.add_organisation("Baseline Ltd"))
    for sale in Sale.objects.select_related("contact").prefetch_related("lines", "receipts"):
        contact = gateway.call("create_contacts", contacts={"Contacts": [mappers.contact_payload(
            sale.contact, name=sale.contact.display_name)]})["Contacts"][0]
        invoice = gateway.call("create_invoices", invoices={"Invoices": [mappers.invoice_payload(
            sale, list(sale.lines.all()), contact_xero_id=contact["ContactID"], sales_account="200",
            shipping_account="205", tax_types={"GST": "OUTPUT2"})]})["Invoices"][0]
        for receipt in sale.receipts.all():
            gateway.call("create_payment", payment=mappers.payment_payload(
                receipt, invoice_xero_id=invoice["InvoiceID"], account_code="620"))
    return gateway.calls_made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    setup_django("push")
    with connected_shop(limits_enabled=False) as emulator:
        orders_through_services(args.orders, lines=ORDER_LINES, paid=Decimal("88.40"))
        started = time.perf_counter()
        runs = push_until_idle()
        ours_seconds = time.perf_counter() - started
        ours = accounting_calls(emulator)
        in_xero = (len(emulator.contacts()), len(emulator.invoices()), len(emulator.payments()))
        baseline = push_one_call_per_record(emulator)
    per_order = len(ours) / args.orders
    figures = {
        "orders": args.orders, "our_calls": len(ours), "baseline_calls": baseline,
        "our_calls_per_order": round(per_order, 3), "baseline_calls_per_order": round(baseline / args.orders, 3),
        "orders_per_5000_call_day": int(5000 / per_order), "orders_per_1000_call_day": int(1000 / per_order),
        "baseline_orders_per_5000_call_day": int(5000 * args.orders / baseline),
        "baseline_orders_per_1000_call_day": int(1000 * args.orders / baseline),
        "xero_holds_contacts_invoices_payments": in_xero, "sync_runs": runs,
        "our_seconds_paced_at_60_calls_per_minute": round(ours_seconds, 2),
    }
    report(f"Push {args.orders} new orders (new contact + card receipt each)", [
        ("", "ours", "one call per record"),
        ("Xero calls", len(ours), baseline),
        ("calls per order", f"{per_order:.3f}", f"{baseline / args.orders:.3f}"),
        ("orders in a 5,000-call day", figures["orders_per_5000_call_day"],
         figures["baseline_orders_per_5000_call_day"]),
        ("orders in a 1,000-call (Starter) day", figures["orders_per_1000_call_day"],
         figures["baseline_orders_per_1000_call_day"]),
        ("Xero holds (contacts, invoices, payments)", in_xero, ""),
    ], figures)


if __name__ == "__main__":
    main()
