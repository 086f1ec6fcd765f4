"""Pushing refunds: each is an approved sales credit note for exactly its lines, then (for a credit on what
the sale still owed) an allocation of that part to the sale's invoice, then (for money paid back) a refund
payment on the credit note from the payment method's account.

Three Xero records, three links (kinds REFUND, ALLOCATION, REFUND_PAYMENT), one outbox row (the refund's).
Credit notes go 50 to a call (PUT: create only, so a number Xero already holds is refused, never overwritten),
refund payments 50 to a call; an allocation is a call of its own (Xero allocates one credit note per call).
After an unknown outcome the credit note is looked up by its number, and its allocations and payments come
with it, so none of the three is made twice.
"""

from decimal import Decimal

from ecommerce.models import Refund

from ... import mappers
from ...models import RecordKind, XeroLink
from ...selectors import refunds_for_xero
from ..paging import id_chunks
from .context import PushContext
from .sender import Item, XeroWrite

State = XeroLink.State
# Xero's words for "a credit note with this number exists" (docs/xero-api.md 8b).
NUMBER_TAKEN = "Credit Note # must be unique"


def _credit_differs(refund: Refund, element: dict) -> str | None:
    total = element.get("Total")
    if total is not None and Decimal(str(total)) != refund.credit_total:
        return (f"Xero's credit note total {total} differs from the website's {refund.credit_total}: check the tax "
                "mapping and the lines.")
    return None


def _lost_call_made_it(record, payload: dict, message: str) -> bool:
    # Refused as a duplicate number: a lost call of ours made it (the next run finds it by number and checks
    # it is ours), or the bookkeeper has one with that number (the next run says so, and leaves it alone).
    return NUMBER_TAKEN in message


CREDIT_NOTES = XeroWrite(kind=RecordKind.REFUND, operation="create_credit_notes", sdk_body_name="credit_notes",
                         body_key="CreditNotes", id_key="CreditNoteID", extra={"unitdp": 4}, check=_credit_differs,
                         may_succeed_later=_lost_call_made_it)
REFUND_PAYMENTS = XeroWrite(kind=RecordKind.REFUND_PAYMENT, operation="create_payments", sdk_body_name="payments",
                            body_key="Payments", id_key="PaymentID", outbox_kind=RecordKind.REFUND)


def _allocation_write(credit_note_xero_id) -> XeroWrite:
    return XeroWrite(kind=RecordKind.ALLOCATION, operation="create_credit_note_allocation",
                     sdk_body_name="allocations", body_key="Allocations", id_key="AllocationID",
                     extra={"credit_note_id": str(credit_note_xero_id)}, outbox_kind=RecordKind.REFUND)


def _refunds(context: PushContext):
    """Refunds for Xero (selectors' answer, the admin column's too), with what the push reads of each."""
    return Refund.objects.filter(refunds_for_xero(context.tenant_id)).select_related("sale").prefetch_related(
        "lines")


def refunds_for_push(context: PushContext, refund_ids: set[int]) -> list[Refund]:
    if not refund_ids:
        return []
    return list(_refunds(context).filter(pk__in=refund_ids))


def refunds_waiting_for(context: PushContext, sale_ids: set[int], already: set[int]) -> list[Refund]:
    """Refunds for Xero of sales that just reached Xero and were left waiting for them."""
    if not sale_ids:
        return []
    waiting = XeroLink.objects.filter(tenant_id=context.tenant_id, kind=RecordKind.REFUND, state=State.ERROR,
                                      xero_id__isnull=True).values("local_id")
    return list(_refunds(context).filter(sale_id__in=sale_ids, pk__in=waiting).exclude(pk__in=already))


def push_refunds(context: PushContext, refunds: list[Refund]) -> None:
    if not refunds:
        return
    ids = [refund.pk for refund in refunds]
    links = context.links.read(RecordKind.REFUND, ids)
    allocation_links = context.links.read(RecordKind.ALLOCATION, ids)
    payment_links = context.links.read(RecordKind.REFUND_PAYMENT, ids)
    sale_links = context.links.read(RecordKind.SALE, {refund.sale_id for refund in refunds})
    _find_lost(context, refunds, links, allocation_links, payment_links)
    _push_credit_notes(context, refunds, links, sale_links)
    in_xero = [refund for refund in refunds if links[refund.pk].xero_id and links[refund.pk].state == State.SYNCED]
    _push_allocations(context, [refund for refund in in_xero if refund.amount_allocated > 0], links,
                      allocation_links, sale_links)
    _push_refund_payments(context, [refund for refund in in_xero if refund.amount_refunded > 0], links, payment_links)


def _push_credit_notes(context: PushContext, refunds: list[Refund], links, sale_links) -> None:
    config, sender = context.config, context.sender
    contact_links = context.links.read(RecordKind.CONTACT, {refund.sale.contact_id for refund in refunds})
    items = []
    for refund in refunds:
        link, sale_link = links[refund.pk], sale_links[refund.sale_id]
        if link.state in (State.CONFLICT, State.LOCKED) or link.xero_id:
            continue  # a credit note is never edited once in Xero; a conflict waits for staff
        if not sale_link.xero_id:
            sender.fail(refund, link, f"Waiting for sale {refund.sale.number} to reach Xero: "
                                      f"{sale_link.last_error or 'not sent'}")
            continue
        contact_link = contact_links[refund.sale.contact_id]
        try:
            payload = mappers.credit_note_payload(
                refund, list(refund.lines.all()), sale=refund.sale, contact_xero_id=contact_link.xero_id,
                sales_account=config.sales_account, shipping_account=config.shipping_account,
                tax_types=config.tax_types, tax_rates=config.tax_rates)
        except mappers.MappingError as error:
            sender.fail(refund, link, str(error))
            continue
        items.append(sender.item(refund, link, payload, refund.number))
    sender.send(CREDIT_NOTES, items)


def _push_allocations(context: PushContext, refunds: list[Refund], links, allocation_links, sale_links) -> None:
    sender = context.sender
    for refund in refunds:
        link = allocation_links[refund.pk]
        if link.xero_id or link.state in (State.LOCKED, State.CONFLICT):
            continue
        payload = mappers.allocation_payload(refund, invoice_xero_id=sale_links[refund.sale_id].xero_id)
        sender.send(_allocation_write(links[refund.pk].xero_id), [sender.item(refund, link, payload, refund.number)])


def _push_refund_payments(context: PushContext, refunds: list[Refund], links, payment_links) -> None:
    sender, accounts = context.sender, context.config.payment_accounts
    items = []
    for refund in refunds:
        link = payment_links[refund.pk]
        if link.state in (State.DELETED, State.CONFLICT) or (link.xero_id and link.state == State.SYNCED):
            continue  # deleted in Xero: staff send it again (which clears the link) when they mean to
        if refund.payment_method_id not in accounts:
            # Money paid back by a method the bookkeeper reconciles in Xero (or that is not for Xero): the
            # credit note is there; the refund is recorded in Xero from the bank feed.
            continue
        payload = mappers.refund_payment_payload(refund, credit_note_xero_id=links[refund.pk].xero_id,
                                                 account_code=accounts[refund.payment_method_id])
        items.append(sender.item(refund, link, payload, mappers.refund_reference(refund)))
    sender.send(REFUND_PAYMENTS, items)


def _find_lost(context: PushContext, refunds: list[Refund], links, allocation_links, payment_links) -> None:
    """Refunds with a record whose creation had an unknown outcome (in flight, no Xero id): their credit
    notes are asked for by number, 40 to a call, and bring their allocations and payments along. A credit
    note found under our number that is not ours (another contact or another total: the bookkeeper's)
    is left alone and shown as a conflict."""
    sender = context.sender
    lost = {refund.number: refund for refund in refunds if any(
        book[refund.pk].state == State.IN_FLIGHT and not book[refund.pk].xero_id
        for book in (links, allocation_links, payment_links))}
    if not lost or sender.time_is_up():
        return  # out of time: they wait, still in flight, for the next run, which asks
    contact_links = context.links.read(RecordKind.CONTACT, {refund.sale.contact_id for refund in lost.values()})
    sale_links = context.links.read(RecordKind.SALE, {refund.sale_id for refund in lost.values()})
    for numbers in id_chunks(lost):
        where = " OR ".join(f'CreditNoteNumber=="{number}"' for number in numbers)
        found = context.gateway.call("get_credit_notes", where=where, unitdp=4).get("CreditNotes", [])
        for credit_note in found:
            refund = lost.get(credit_note.get("CreditNoteNumber"))
            if refund is None or credit_note.get("Status") in ("DELETED", "VOIDED"):
                continue
            link = links[refund.pk]
            if not _is_ours(credit_note, refund, contact_links[refund.sale.contact_id].xero_id):
                # Xero's, as for a sale's invoice (invoices._find_lost_invoices): sent, and held up by Xero's record.
                link.state, link.last_error = State.CONFLICT, _not_ours_words(credit_note, refund)
                link.error_by = XeroLink.ErrorBy.XERO
                context.links.changed(link)
                context.links.event(link, State.CONFLICT, link.last_error)
                continue
            if not link.xero_id:
                link.xero_id = credit_note["CreditNoteID"]
                _settle_found(context, refund, link)
            _adopt_allocation(context, credit_note, refund, allocation_links[refund.pk], sale_links[refund.sale_id])
            _adopt_refund_payment(context, credit_note, refund, payment_links[refund.pk])
    context.links.flush()


def _is_ours(credit_note: dict, refund: Refund, contact_xero_id) -> bool:
    contact = str((credit_note.get("Contact") or {}).get("ContactID") or "")
    total = credit_note.get("Total")
    return (credit_note.get("Type", "ACCRECCREDIT") == "ACCRECCREDIT" and contact == str(contact_xero_id or "")
            and total is not None and Decimal(str(total)) == refund.credit_total)


def _not_ours_words(credit_note: dict, refund: Refund) -> str:
    name = (credit_note.get("Contact") or {}).get("Name") or "another contact"
    return (f"Xero already holds a credit note {refund.number} that the website did not make ({name}, "
            f"{credit_note.get('Total')}); the push leaves it alone. Ask the bookkeeper to renumber or void theirs "
            "in Xero, then send this refund again.")


def _adopt_allocation(context: PushContext, credit_note: dict, refund: Refund, link: XeroLink, sale_link) -> None:
    if link.xero_id or not (link.state == State.IN_FLIGHT and refund.amount_allocated > 0):
        return
    for allocation in credit_note.get("Allocations") or []:
        invoice_id = str((allocation.get("Invoice") or {}).get("InvoiceID") or "")
        if invoice_id == str(sale_link.xero_id) and Decimal(str(allocation.get("Amount"))) == refund.amount_allocated:
            link.xero_id = allocation.get("AllocationID") or credit_note["CreditNoteID"]
            _settle_found(context, refund, link)
            return


def _adopt_refund_payment(context: PushContext, credit_note: dict, refund: Refund, link: XeroLink) -> None:
    if link.xero_id or not (link.state == State.IN_FLIGHT and refund.amount_refunded > 0):
        return
    for payment in credit_note.get("Payments") or []:
        by_reference = mappers.refund_number_from_reference(payment.get("Reference")) == refund.number
        if by_reference and payment.get("Status") != "DELETED" and payment.get("PaymentID"):
            link.xero_id = payment["PaymentID"]
            _settle_found(context, refund, link)
            return


def _settle_found(context: PushContext, refund: Refund, link: XeroLink) -> None:
    """Found in Xero after an unknown outcome: it holds what we sent (none of the three is ever edited)."""
    context.sender.settle(Item(record=refund, link=link, payload={}, digest=link.sent_hash, key=link.xero_key),
                          State.SYNCED)
