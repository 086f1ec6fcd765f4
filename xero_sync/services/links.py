"""Questions and actions about individual records' sync state, for the admin and the command line."""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from ecommerce.models import Payment, Receipt, Refund, Sale
from ecommerce.selectors import sale_totals
from ecommerce.services import removed_in_books_set

from ..models import RecordKind, XeroLink
from ..selectors import receipts_for_xero
from .outbox import outbox_record, outbox_record_many

PROBLEM_STATES = (XeroLink.State.ERROR, XeroLink.State.LOCKED, XeroLink.State.CONFLICT, XeroLink.State.DEAD,
                  XeroLink.State.DELETED)
# A refund's parts go to Xero with the refund (its outbox row), and are sent again with it.
REFUND_PARTS = (RecordKind.REFUND, RecordKind.ALLOCATION, RecordKind.REFUND_PAYMENT)
# The website records whose payments the bookkeeper can delete in Xero, by the link of that payment.
PAYMENT_RECORDS = {RecordKind.RECEIPT: Receipt, RecordKind.REFUND_PAYMENT: Refund}


def outbox_kind(kind: RecordKind | str) -> RecordKind:
    return RecordKind.REFUND if kind in REFUND_PARTS else RecordKind(kind)


def links_with_problems() -> QuerySet[XeroLink]:
    return XeroLink.objects.filter(state__in=PROBLEM_STATES).order_by("-last_pushed_at", "-id")


@transaction.atomic
def links_requeue(*, links: QuerySet[XeroLink]) -> int:
    """Send these records again at the next run: a fresh attempt count and an outbox row each."""
    requeued = 0
    for link in links.select_for_update():
        link.attempts = 0
        link.last_error = link.error_by = ""
        if link.state == XeroLink.State.DELETED:
            # Deleted in Xero by the bookkeeper: sending it again makes a new payment there, and the website
            # counts it again from now.
            _payment_sent_again(link)
        if link.state in PROBLEM_STATES:
            link.state = XeroLink.State.PENDING
        link.save(update_fields=["attempts", "last_error", "error_by", "state", "xero_id", "payload_hash",
                                 "sent_hash", "xero_status", "in_flight_since"])
        outbox_record(outbox_kind(link.kind), link.local_id)
        requeued += 1
    return requeued


def _payment_sent_again(link: XeroLink) -> None:
    record = PAYMENT_RECORDS[link.kind].objects.filter(pk=link.local_id).first()
    if record is not None:
        removed_in_books_set(record=record, removed=False)
    link.xero_id = None
    link.payload_hash = link.sent_hash = link.xero_status = ""
    link.in_flight_since = None


@transaction.atomic
def links_send_now(*, kind: RecordKind | str, local_ids: Iterable[int]) -> int:
    """"Send to Xero now" for these records: those Xero refused or gave up on get a fresh start, and every
    one is recorded to go, in one transaction (so a sync started afterwards sees all of them or none).
    Starting that sync is the caller's (a task layer concern). Returns how many records were given."""
    local_ids = list(dict.fromkeys(local_ids))
    kinds = REFUND_PARTS if kind == RecordKind.REFUND else (RecordKind(kind),)
    links_requeue(links=XeroLink.objects.filter(kind__in=kinds, local_id__in=local_ids))
    outbox_record_many(kind, local_ids)
    return len(local_ids)


def receipts_xero_refuses(receipts: Iterable[Receipt]) -> dict[int, str]:
    """Of these receipts, those Xero will refuse, by id, each with why in words for staff.

    Xero takes no payment above what is outstanding on its invoice (docs/xero-api.md section 8: Amount
    "must be less than or equal to the outstanding amount owing"), so a receipt taken with "overpayment
    allowed" on a method that pushes can never reach Xero as it is. What Xero will have outstanding when it
    arrives: the sale's total, less the payments Xero holds that the pull brought in, less the sale's other
    receipts for Xero that go before it (by id) and fit. Receipts that stay on the website (cash, say) are
    not Xero's business: they never refuse, and they take nothing off what Xero has outstanding."""
    wanted = {receipt.pk for receipt in receipts}
    going = list(Receipt.objects.filter(receipts_for_xero(), sale__receipts__pk__in=wanted).distinct().order_by("pk"))
    if not wanted & {receipt.pk for receipt in going}:
        return {}
    by_sale: dict[int, list[Receipt]] = defaultdict(list)
    for receipt in going:
        by_sale[receipt.sale_id].append(receipt)
    refused = {}
    for sale in Sale.objects.filter(pk__in=by_sale).prefetch_related("lines", "payments"):
        outstanding = sale_totals(sale).total - sum(
            (payment.amount for payment in sale.payments.all() if payment.status == Payment.Status.ACTIVE),
            Decimal("0.00"))
        for receipt in by_sale[sale.pk]:
            if receipt.amount <= outstanding:
                outstanding -= receipt.amount
            elif receipt.pk in wanted:
                refused[receipt.pk] = (
                    f"Xero refuses payments above the amount due: this {receipt.amount} receipt is more than the "
                    f"{max(outstanding, Decimal('0.00'))} Xero will have outstanding on {sale.number}, so it "
                    "cannot reach Xero as it is. Record what is due as one receipt and the rest with a method "
                    "that stays on the website, or deal with the overpayment in Xero.")
    return refused


def xero_web_url(*, kind: RecordKind | str, xero_id, tenant_id, invoice_xero_id=None) -> str | None:
    """Where staff see the record in Xero: the emulator's own page when running on it, else Xero's."""
    if not xero_id:
        return None
    if settings.XERO_USING_EMULATOR:
        base = settings.XERO_API_URL.removesuffix("/api.xro/2.0")
        collection = {RecordKind.CONTACT: "contacts", RecordKind.SALE: "invoices", RecordKind.RECEIPT: "payments",
                      RecordKind.REFUND: "credit-notes", RecordKind.ALLOCATION: "credit-notes",
                      RecordKind.REFUND_PAYMENT: "payments"}[kind]
        return f"{base}/_emulator/orgs/{tenant_id}/{collection}/{xero_id}"
    if kind == RecordKind.CONTACT:
        return f"https://go.xero.com/Contacts/View/{xero_id}"
    if kind == RecordKind.REFUND:
        return f"https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={xero_id}"
    # A payment is seen on its invoice in Xero.
    invoice = xero_id if kind == RecordKind.SALE else invoice_xero_id
    return f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={invoice}" if invoice else None


ADVICE = (
    ("that the website did not create", "Xero's invoice under this number is the bookkeeper's. Ask them to "
                                        "renumber it in Xero, then use “Send to Xero now”."),
    ("that the website did not make", "Xero's credit note under this number is the bookkeeper's. Ask them to "
                                      "renumber it in Xero, then use “Send to Xero now”."),
    ("not mapped to a Xero tax type", "Map the tax code on the Xero settings page, then use “Send to Xero now”."),
    ("has no account", "Set the default accounts on the Xero settings page, then use “Send to Xero now”."),
    ("differs from the website", "Check the tax mapping matches the tax rates, then “Send to Xero now”."),
    ("Waiting for", "It goes by itself once the record it waits for reaches Xero."),
    ("Gave up after", "Xero kept failing. Check Xero's status page, then use “Send to Xero now”."),
    ("The contact name", "Another active Xero contact has every name the website could give this one: change "
                         "its name or company (or rename or archive the other contact in Xero), then save it."),
)
STATE_ADVICE = {
    XeroLink.State.LOCKED: "Xero refuses changes to an invoice with payments. Delete the payments in Xero (they "
                           "can be re-applied), then use “Send to Xero now”; or leave Xero's copy as it is.",
    XeroLink.State.CONFLICT: "Delete the payment in Xero and use “Send to Xero now”, or change the receipt back.",
    XeroLink.State.DELETED: "The bookkeeper deleted it in Xero, so the website no longer counts it. Use “Send to "
                            "Xero now” to record it in Xero again, or leave it deleted.",
}


def link_advice(link: XeroLink) -> str:
    """What staff can do about a record's current problem, in plain words."""
    for marker, advice in ADVICE:
        if marker in link.last_error:
            return advice
    if link.state in STATE_ADVICE:
        return STATE_ADVICE[link.state]
    if link.state == XeroLink.State.ERROR:
        return "Correct what Xero says on the record and save it; it is sent again automatically."
    return ""
