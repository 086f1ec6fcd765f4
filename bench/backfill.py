"""A backfill of historical orders pushed through Xero's limits, with the minute window shortened so it
runs in minutes: 60 calls per 2 s on the emulator and in our pacing, Retry-After scaled alike. Prints the calls,
the time they take at Xero's real 60 calls a minute, the 429s received (target: none), the time here, and
the pushing worker's peak memory for each size (it should stay flat as the backfill grows).

    python bench/backfill.py [--sizes 5000 20000]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import REPO, accounting_calls, bulk_orders, connected_shop, report, setup_django

WINDOW_SECONDS, PER_WINDOW = 2, 60


def one_size(orders: int, emulator) -> dict:
    from django.db import connection

    bulk_orders(orders, days_back=365)
    emulator.reset_calls()
    environment = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "XERO_EMULATOR_URL": emulator.base_url, "XERO_CLIENT_ID": "emulator-client",
        "XERO_CLIENT_SECRET": "emulator-secret", "XERO_SYNC_NUDGE": "false",
        "XERO_RATE_WINDOW_SECONDS": str(WINDOW_SECONDS), "XERO_RATE_PER_WINDOW": str(PER_WINDOW),
        "LOG_LEVEL": "WARNING", "DEBUG": "false",
    }
    connection.close()  # the worker process uses the database now
    worker = subprocess.run([sys.executable, str(Path(__file__).with_name("push_worker.py"))], cwd=REPO,
                            env=environment, capture_output=True, text=True, check=True)
    result = json.loads(worker.stdout.strip().splitlines()[-1])
    calls = accounting_calls(emulator)
    return {
        "orders": orders, "calls": len(calls), "rate_limited_429": sum(1 for c in calls if c["status"] == 429),
        # Xero allows 60 calls a minute: that, not our CPU, sets the pace of a real backfill.
        "seconds": round(result["seconds"], 1), "minutes_at_xero_60_per_minute": round(len(calls) / 60, 1),
        "worker_peak_rss_mb": round(result["peak_rss_mb"], 1), "runs": result["runs"],
        "xero_holds": [len(emulator.contacts()), len(emulator.invoices()), len(emulator.payments())],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        if results:
            _fresh_database(f"backfill-{size}")
        else:
            setup_django(f"backfill-{size}")
        with connected_shop(per_minute=PER_WINDOW, window_seconds=WINDOW_SECONDS) as emulator:
            results.append(one_size(size, emulator))
    rows = [("orders", "Xero calls", "429s", "seconds here", "minutes at Xero's 60/min", "worker peak RSS MB")]
    rows += [(r["orders"], r["calls"], r["rate_limited_429"], r["seconds"], r["minutes_at_xero_60_per_minute"],
              r["worker_peak_rss_mb"]) for r in results]
    report(f"Backfill through Xero's limits (emulator and pacing at 60 calls / {WINDOW_SECONDS} s)", rows,
           {"results": results})


def _fresh_database(name: str) -> None:
    """A clean database for the next size (SQLite: a new file; PostgreSQL: emptied)."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "sqlite":
        connection.close()
        database = REPO / "var" / "bench" / f"{name}.sqlite3"
        database.unlink(missing_ok=True)
        connection.settings_dict["NAME"] = str(database)
        os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    else:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)


if __name__ == "__main__":
    main()
