"""Calls, time and the worker's peak memory for a full pull of N invoices (for each size given), then an
idle pull and an incremental pull after 100 changes at the last size.

    python bench/pull.py [--invoices 10000 100000]

The full pull runs in a worker process of its own (bench/pull_worker.py), so its peak memory (VmHWM) is
the worker's alone: it should stay flat as the invoices grow, since the pull holds one page at a time.
Invoice calls should be ceil(N / 1,000): the last full page is known from Xero's pagination.pageCount.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, accounting_calls, connected_shop, report, setup_django


def timed_pull(emulator, **options) -> tuple[int, float]:
    from xero_sync.services.sync import sync_run

    emulator.reset_calls()
    started = time.perf_counter()
    sync_run(trigger="command", force=True, push=False, **options)
    return len(accounting_calls(emulator)), time.perf_counter() - started


def invoice_calls(emulator) -> int:
    return sum(1 for call in accounting_calls(emulator) if call["path"].rstrip("/").endswith("/Invoices"))


def seed_invoices(emulator, count: int) -> None:
    customers = [emulator.create_contact(Name=f"Customer {n}", EmailAddress=f"p{n}@example.com")
                 for n in range(200)]
    for n in range(count):
        # An invoice every 20 seconds, as a busy shop's history has them: if thousands shared the last second,
        # every later pull would read them again (Xero's If-Modified-Since is "at or after", to the second).
        emulator.clock.advance(20)
        if n % 2000 == 0:
            _fresh_token()  # the site renews its token as Xero's clock goes (it would, over these weeks)
        emulator.create_invoice(Contact={"ContactID": customers[n % len(customers)]["ContactID"]},
                                LineItems=[{"Description": "Consulting", "Quantity": 1, "UnitAmount": 100 + n % 50,
                                            "AccountCode": "200", "TaxType": "OUTPUT2"}])


def worker_pull(emulator) -> dict:
    """One full pull in a worker process; its calls, time and peak memory."""
    from django.db import connection

    emulator.reset_calls()
    environment = {**os.environ, "XERO_EMULATOR_URL": emulator.base_url, "XERO_CLIENT_ID": "emulator-client",
                   "XERO_CLIENT_SECRET": "emulator-secret", "XERO_SYNC_NUDGE": "false", "LOG_LEVEL": "WARNING",
                   "DEBUG": "false"}
    connection.close()  # the worker uses the database now
    worker = subprocess.run([sys.executable, str(Path(__file__).with_name("pull_worker.py"))], cwd=REPO,
                            env=environment, capture_output=True, text=True, check=True)
    result = json.loads(worker.stdout.strip().splitlines()[-1])
    return {"calls": len(accounting_calls(emulator)), "invoice_calls": invoice_calls(emulator),
            "seconds": round(result["seconds"], 1), "worker_peak_rss_mb": round(result["peak_rss_mb"], 1),
            "status": result["status"], "errors": result["errors"]}


def one_size(count: int, *, last: bool) -> dict:
    with connected_shop(limits_enabled=False) as emulator:
        seed_invoices(emulator, count)
        _fresh_token()  # the history spans weeks of Xero's clock: start with a token as a live site holds
        full = worker_pull(emulator)
        from ecommerce.models import Contact, Invoice

        full.update(invoices=count, invoices_taken_in=Invoice.objects.count(),
                    invoice_call_budget=math.ceil(count / 1000) + 3,
                    contacts_with_figures=Contact.objects.filter(invoice_count__gt=0).count())
        if not last:
            return full
        emulator.clock.advance(5)
        full["idle_calls"], idle_seconds = timed_pull(emulator)
        full["idle_seconds"] = round(idle_seconds, 2)
        emulator.clock.advance(60)
        for invoice in emulator.invoices()[:100]:
            emulator.void_invoice(invoice["InvoiceID"])
        emulator.clock.advance(60)
        full["incremental_calls"], changed_seconds = timed_pull(emulator)
        full["incremental_seconds"] = round(changed_seconds, 2)
        full["voided_seen"] = Invoice.objects.filter(status="VOIDED").count()
        return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, nargs="+", default=[10000])
    args = parser.parse_args()
    results = []
    for index, count in enumerate(args.invoices):
        if index:
            _fresh_database(f"pull-{count}")
        else:
            setup_django(f"pull-{count}")
        results.append(one_size(count, last=index == len(args.invoices) - 1))
    rows = [("invoices", "Xero calls", "invoice calls (budget)", "seconds", "worker peak RSS MB")]
    rows += [(f"full pull of {r['invoices']:,}", r["calls"], f"{r['invoice_calls']} ({r['invoice_call_budget']})",
              r["seconds"], r["worker_peak_rss_mb"]) for r in results]
    last = results[-1]
    rows += [("idle pull", last["idle_calls"], "", last["idle_seconds"], ""),
             ("after 100 invoices voided in Xero", last["incremental_calls"], "", last["incremental_seconds"], "")]
    if len(results) > 1:
        rows.append(("peak memory, largest / smallest", "", "", "",
                     round(results[-1]["worker_peak_rss_mb"] / results[0]["worker_peak_rss_mb"], 3)))
    report("Pull: full pulls, idle, and after 100 changes", rows, {"results": results})


def _fresh_token() -> None:
    from xero_sync.crypto import decrypt_token
    from xero_sync.services.connection import connection_access_token, connection_current

    current = connection_current()
    connection_access_token(current.pk, rejected=decrypt_token(current.token_ciphertext)["access_token"])


def _fresh_database(name: str) -> None:
    from backfill import _fresh_database as fresh

    fresh(name)


if __name__ == "__main__":
    main()
