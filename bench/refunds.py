"""Xero calls to push N refunds of card-paid sales (each a credit note for one of the sale's lines and a
refund payment), next to the calls a one-call-per-record integration makes for the same refunds, measured
in the same run on the emulator. The sales, contacts and receipts are pushed first and not counted.

    python bench/refunds.py [--refunds 1000]
"""

import argparse
import math
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

THREE_CAPS = [{"description": "Cap", "quantity": Decimal("3"), "unit_amount": Decimal("33.33"),
               "tax_rate": Decimal("15"), "tax_code": "GST"}]


def refund_one_cap_each() -> None:
    from ecommerce import services
    from ecommerce.models import PaymentMethod, Sale

    card = PaymentMethod.objects.get(code="card")
    for sale in Sale.objects.prefetch_related("lines"):
        [cap] = sale.lines.all()
        services.refund_record(sale=sale, payment_method=card, lines=[{"line": cap, "quantity": Decimal("1")}])


def refunds_one_call_per_record(emulator) -> int:
    """What a plugin that writes each record on its own does for the same refunds: a credit note and a
    refund payment each, through the same gateway, on the invoices already in Xero."""
    from ecommerce.models import Refund
    from xero_sync import mappers
    from xero_sync.models import RecordKind, XeroLink

    gateway = one_call_per_record_gateway(emulator, emulator.default_tenant_id)
    contacts = dict(XeroLink.objects.filter(kind=RecordKind.CONTACT).values_list("local_id", "xero_id"))
    for refund in Refund.objects.select_related("sale").prefetch_related("lines"):
        payload = mappers.credit_note_payload(
            refund, list(refund.lines.all()), sale=refund.sale, contact_xero_id=contacts[refund.sale.contact_id],
            sales_account="200", shipping_account="205", tax_types={"GST": "OUTPUT2"})
        payload["CreditNoteNumber"] = f"B-{refund.number}"  # the baseline's own documents
        note = gateway.call("create_credit_notes", credit_notes={"CreditNotes": [payload]})["CreditNotes"][0]
        gateway.call("create_payment", payment=mappers.refund_payment_payload(
            refund, credit_note_xero_id=note["CreditNoteID"], account_code="620"))
    return gateway.calls_made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refunds", type=int, default=1000)
    args = parser.parse_args()
    setup_django("refunds")
    with connected_shop(limits_enabled=False) as emulator:
        orders_through_services(args.refunds, lines=THREE_CAPS, paid=Decimal("99.99"))
        push_until_idle()
        emulator.reset_calls()
        refund_one_cap_each()
        started = time.perf_counter()
        runs = push_until_idle()
        seconds = time.perf_counter() - started
        ours = accounting_calls(emulator)
        writes = [call for call in ours if call["method"] in ("PUT", "POST")]
        notes = [note for note in emulator.credit_notes() if note["CreditNoteNumber"].startswith("CN-")]
        refunds = [payment for payment in emulator.payments() if payment.get("CreditNote")]
        exact = all(Decimal(str(note["Total"])) == Decimal("33.33") for note in notes)
        baseline = refunds_one_call_per_record(emulator)
    goal = 2 * math.ceil(args.refunds / 50)
    figures = {
        "refunds": args.refunds, "our_calls": len(ours), "our_writes": len(writes), "write_goal": goal,
        "baseline_calls": baseline, "credit_notes_in_xero": len(notes), "refund_payments_in_xero": len(refunds),
        "every_credit_note_33_33": exact, "sync_runs": runs, "seconds": round(seconds, 2),
    }
    report(f"Push {args.refunds} refunds of card-paid sales (one line of three each)", [
        ("", "ours", "one call per record"),
        ("Xero calls", len(ours), baseline),
        ("of which writes", f"{len(writes)} (goal <= {goal})", baseline),
        ("calls per refund", f"{len(ours) / args.refunds:.3f}", f"{baseline / args.refunds:.3f}"),
        ("Xero holds (credit notes, refund payments)", (len(notes), len(refunds)), ""),
    ], figures)


if __name__ == "__main__":
    main()
