"""What recording changes for Xero costs a staff save: time and queries to save a sale with ten lines,
with sync recording on and off, in one run.

    python bench/admin_overhead.py [--saves 200]
"""

import argparse
import statistics
import time
from decimal import Decimal

from common import report, setup_django


def measure(saves: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ecommerce import services

    contact = services.contact_create(first_name="Liam", last_name="Chen", email="liam@example.com")
    sale = services.sale_create(contact=contact, confirm=True, lines=[
        {"description": "Item", "unit_amount": Decimal("1"), "tax_rate": Decimal("15"), "tax_code": "GST"}])
    timings, queries = [], []
    for save in range(saves):
        lines = [{"description": f"Item {n}", "quantity": Decimal(n + 1), "unit_amount": Decimal("9.99") + save,
                  "tax_rate": Decimal("15"), "tax_code": "GST"} for n in range(10)]
        connection.queries_log.clear()  # a full log (9,000 entries) would make every later count 0
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            services.sale_update(sale=sale, reference=f"save {save}", lines=lines)
            timings.append(time.perf_counter() - started)
        queries.append(len(captured))
    return statistics.median(timings) * 1000, int(statistics.median(queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    setup_django("admin-overhead")
    from xero_sync.receivers import connect_receivers, disconnect_receivers

    on_ms, on_queries = measure(args.saves)
    disconnect_receivers()
    off_ms, off_queries = measure(args.saves)
    connect_receivers()
    figures = {"saves": args.saves, "median_ms_on": round(on_ms, 2), "median_ms_off": round(off_ms, 2),
               "queries_on": on_queries, "queries_off": off_queries, "time_ratio": round(on_ms / off_ms, 3)}
    report("Saving a sale with ten lines: sync recording on vs off", [
        ("", "recording on", "recording off"),
        ("median time (ms)", figures["median_ms_on"], figures["median_ms_off"]),
        ("queries", on_queries, off_queries),
        ("time ratio on/off", figures["time_ratio"], ""),
    ], figures)


if __name__ == "__main__":
    main()
