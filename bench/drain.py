"""Our own CPU cost: records per second through the whole push path (outbox, mapping, batching, HTTP to
the emulator, results) with every rate limit off, and the profile's top entries.

    python bench/drain.py [--orders 2000]
"""

import argparse
import cProfile
import io
import pstats
import time

from common import accounting_calls, bulk_orders, connected_shop, report, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()
    setup_django("drain")
    from common import push_everything
    from django.conf import settings

    settings.XERO_RATE_PER_WINDOW = 1_000_000  # our pacing off too: this measures our own cost
    with connected_shop(limits_enabled=False) as emulator:
        bulk_orders(args.orders)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        push_everything()
        profiler.disable()
        seconds = time.perf_counter() - started
        calls = len(accounting_calls(emulator))
    records = args.orders * 3
    listing = io.StringIO()
    pstats.Stats(profiler, stream=listing).sort_stats("tottime").print_stats(12)
    top = [line.strip() for line in listing.getvalue().splitlines() if line.strip()[:1].isdigit()][:12]
    figures = {"orders": args.orders, "records": records, "seconds": round(seconds, 2), "calls": calls,
               "records_per_second": round(records / seconds, 1), "profile_top_by_own_time": top,
               "note": "emulator in the same process: its CPU is included"}
    report("Drain throughput, limits off (records = contacts + invoices + payments)", [
        ("", "figure"),
        ("records pushed", records),
        ("seconds (profiled)", figures["seconds"]),
        ("records per second", figures["records_per_second"]),
        ("Xero calls", calls),
        *[(f"profile #{n + 1}", line) for n, line in enumerate(top[:8])],
    ], figures)


if __name__ == "__main__":
    main()
