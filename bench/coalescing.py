"""Writes sent to Xero for 100 edits of one sale inside the quiet period.

    python bench/coalescing.py [--edits 100]
"""

import argparse
from decimal import Decimal

from common import accounting_calls, connected_shop, report, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=100)
    args = parser.parse_args()
    setup_django("coalescing")
    from ecommerce import services
    from xero_sync.services.sync import sync_is_due, sync_run

    with connected_shop(limits_enabled=False) as emulator:
        contact = services.contact_create(first_name="Ana", last_name="Tipene", email="ana@example.com")
        sale = services.sale_create(contact=contact, confirm=True, lines=[
            {"description": "Beanie", "quantity": Decimal("1"), "unit_amount": Decimal("39.95"),
             "tax_rate": Decimal("15"), "tax_code": "GST"}])
        sync_run(trigger="command", force=True, pull=False)
        emulator.reset_calls()
        for edit in range(args.edits):
            services.sale_update(sale=sale, reference=f"edit {edit + 1}", lines=[
                {"description": "Beanie", "quantity": Decimal(edit % 5 + 1), "unit_amount": Decimal("39.95"),
                 "tax_rate": Decimal("15"), "tax_code": "GST"}])
        due_during_edits = sync_is_due()
        sync_run(trigger="command", force=True, pull=False)
        writes = [call for call in accounting_calls(emulator) if call["method"] in ("PUT", "POST")]
        elements = sum(len(call["request_json"].get("Invoices", [])) for call in writes)
    figures = {"edits": args.edits, "write_calls": len(writes), "invoices_sent": elements,
               "due_inside_quiet_period": due_during_edits}
    report(f"{args.edits} edits of one sale inside the quiet period", [
        ("", "figure"),
        ("edits made", args.edits),
        ("Xero write calls", len(writes)),
        ("invoices sent", elements),
        ("due while still editing", due_during_edits),
    ], figures)


if __name__ == "__main__":
    main()
