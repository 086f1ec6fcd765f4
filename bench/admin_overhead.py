"""What recording changes for Xero costs a staff save: time and queries to save a sale with ten lines,
with sync recording on and off, in one run.

    python bench/admin_overhead.py [--saves 200]

The saves with recording on and off alternate (two sales of one contact, the side going first swapped
each round), so both see the same database and the same machine: a neighbour's load, or a table
growing, would otherwise fall on whichever side ran second.
"""

import argparse
import statistics
import time
from decimal import Decimal

from common import report, setup_django

WARM_UP_SAVES = 10


def measure(saves: int) -> dict[bool, tuple[float, int]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ecommerce import services
    from xero_sync.receivers import connect_receivers, disconnect_receivers

    contact = services.contact_create(first_name="Liam", last_name="Chen", email="liam@example.com")
    sales = {recording: services.sale_create(contact=contact, confirm=True, lines=[
        {"description": "Item", "unit_amount": Decimal("1"), "tax_rate": Decimal("15"), "tax_code": "GST"}])
        for recording in (True, False)}
    timings: dict[bool, list[float]] = {True: [], False: []}
    queries: dict[bool, list[int]] = {True: [], False: []}
    for save in range(WARM_UP_SAVES + saves):
        for recording in ((True, False) if save % 2 else (False, True)):
            (connect_receivers if recording else disconnect_receivers)()
            lines = [{"description": f"Item {n}", "quantity": Decimal(n + 1),
                      "unit_amount": Decimal("9.99") + save, "tax_rate": Decimal("15"), "tax_code": "GST"}
                     for n in range(10)]
            connection.queries_log.clear()  # a full log (9,000 entries) would make every later count 0
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                services.sale_update(sale=sales[recording], reference=f"save {save}", lines=lines)
                elapsed = time.perf_counter() - started
            if save >= WARM_UP_SAVES:
                timings[recording].append(elapsed)
                queries[recording].append(len(captured))
    connect_receivers()
    return {recording: (statistics.median(timings[recording]) * 1000, int(statistics.median(queries[recording])))
            for recording in (True, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    setup_django("admin-overhead")

    measured = measure(args.saves)
    (on_ms, on_queries), (off_ms, off_queries) = measured[True], measured[False]
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
