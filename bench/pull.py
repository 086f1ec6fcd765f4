"""Calls and time for an idle pull, a full pull of N invoices, and an incremental pull after 100 changes.

    python bench/pull.py [--invoices 10000]
"""

import argparse
import time

from common import accounting_calls, connected_shop, report, setup_django


def timed_pull(emulator, **options) -> tuple[int, float]:
    from xero_sync.services.sync import sync_run

    emulator.reset_calls()
    started = time.perf_counter()
    sync_run(trigger="command", force=True, push=False, **options)
    return len(accounting_calls(emulator)), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=10000)
    args = parser.parse_args()
    setup_django("pull")
    with connected_shop(limits_enabled=False) as emulator:
        customers = [emulator.create_contact(Name=f"Customer {n}", EmailAddress=f"p{n}@example.com")
                     for n in range(200)]
        for n in range(args.invoices):
            # An invoice a minute, as a shop's history has them: if thousands shared the last second, every
            # later pull would read them again (Xero's If-Modified-Since is "at or after", to the second).
            emulator.clock.advance(60)
            emulator.create_invoice(Contact={"ContactID": customers[n % len(customers)]["ContactID"]},
                                    LineItems=[{"Description": "Consulting", "Quantity": 1, "UnitAmount": 100 + n % 50,
                                                "AccountCode": "200", "TaxType": "OUTPUT2"}])
        _fresh_token()  # the history spans a week of Xero's clock: start with a token as a live site holds
        full_calls, full_seconds = timed_pull(emulator)
        emulator.clock.advance(5)
        idle_calls, idle_seconds = timed_pull(emulator)
        emulator.clock.advance(60)
        for invoice in emulator.invoices()[:100]:
            emulator.void_invoice(invoice["InvoiceID"])
        emulator.clock.advance(60)
        changed_calls, changed_seconds = timed_pull(emulator)
        from ecommerce.models import Invoice

        voided = Invoice.objects.filter(status="VOIDED").count()
    figures = {"invoices": args.invoices, "full_calls": full_calls, "full_seconds": round(full_seconds, 1),
               "idle_calls": idle_calls, "idle_seconds": round(idle_seconds, 2), "incremental_calls": changed_calls,
               "incremental_seconds": round(changed_seconds, 2), "voided_seen": voided}
    report(f"Pull: full ({args.invoices:,} invoices), idle, and after 100 changes", [
        ("", "Xero calls", "seconds"),
        (f"full pull of {args.invoices:,} invoices", full_calls, figures["full_seconds"]),
        ("idle pull", idle_calls, figures["idle_seconds"]),
        ("after 100 invoices voided in Xero", changed_calls, figures["incremental_seconds"]),
    ], figures)


def _fresh_token() -> None:
    from xero_sync.crypto import decrypt_token
    from xero_sync.services.connection import connection_access_token, connection_current

    current = connection_current()
    connection_access_token(current.pk, rejected=decrypt_token(current.token_ciphertext)["access_token"])


if __name__ == "__main__":
    main()
