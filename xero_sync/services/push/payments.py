"""Pushing receipts as payments on their sales' invoices. Xero payments cannot be edited, only deleted."""

from django.db.models import Exists, OuterRef

from ecommerce.models import Receipt

from ... import mappers
from ...models import RecordKind, XeroLink
from ...selectors import receipts_for_xero
from ..links import receipts_xero_refuses
from ..paging import xero_pages
from .context import LOOKBACK, PushContext
from .sender import XeroWrite

State = XeroLink.State
PAYMENTS = XeroWrite(kind=RecordKind.RECEIPT, operation="create_payments", sdk_body_name="payments",
                     body_key="Payments", id_key="PaymentID")


def _receipts(context: PushContext):
    """Receipts for Xero whose payment method's account this run knows (a method set to push since it
    began waits for the next run)."""
    return Receipt.objects.filter(receipts_for_xero(), payment_method_id__in=context.config.payment_accounts)


def receipts_for_push(context: PushContext, receipt_ids: set[int]) -> list[Receipt]:
    return list(_receipts(context).filter(pk__in=receipt_ids).select_related("sale"))


def receipts_waiting_for(context: PushContext, sale_ids: set[int], already: set[int]) -> list[Receipt]:
    """Receipts for Xero of sales that just reached Xero and that were left waiting for them."""
    if not sale_ids:
        return []
    synced = XeroLink.objects.filter(tenant_id=context.tenant_id, kind=RecordKind.RECEIPT,
                                     local_id=OuterRef("pk"), state=State.SYNCED)
    return list(_receipts(context).filter(sale_id__in=sale_ids).exclude(pk__in=already).exclude(Exists(synced))
                .select_related("sale"))


def push_payments(context: PushContext, receipts: list[Receipt]) -> None:
    links = context.links.read(RecordKind.RECEIPT, [receipt.pk for receipt in receipts])
    sale_links = context.links.read(RecordKind.SALE, {receipt.sale_id for receipt in receipts})
    _find_lost_payments(context, [links[receipt.pk] for receipt in receipts])
    sender = context.sender
    # Xero refuses a payment above what the invoice still owes: say so on the receipt, and spend no call.
    refused = receipts_xero_refuses(receipts)
    items = []
    for receipt in receipts:
        link, sale_link = links[receipt.pk], sale_links[receipt.sale_id]
        if link.state == State.DELETED:
            continue  # the bookkeeper deleted it in Xero: it goes again only when staff send it again
        if not sale_link.xero_id:
            sender.fail(receipt, link,
                        f"Waiting for sale {receipt.sale.number} to reach Xero: {sale_link.last_error or 'not sent'}")
            continue
        if receipt.pk in refused and not link.xero_id:
            sender.fail(receipt, link, refused[receipt.pk])
            continue
        payload = mappers.payment_payload(receipt, invoice_xero_id=sale_link.xero_id,
                                          account_code=context.config.payment_accounts[receipt.payment_method_id])
        item = sender.item(receipt, link, payload, mappers.receipt_key(receipt.pk))
        if link.xero_id and link.payload_hash and link.payload_hash != item.digest:
            # Xero payments cannot be edited, only deleted; say so rather than diverge silently.
            # This site's check: the change is not sent, since Xero would refuse it.
            sender.settle(item, State.CONFLICT, by=XeroLink.ErrorBy.SITE, error=(
                "This receipt was changed after it reached Xero, and Xero payments cannot be edited. "
                "Delete the payment in Xero and requeue the receipt, or change the receipt back."))
            continue
        if link.xero_id and link.payload_hash == item.digest and link.state != State.SYNCED:
            sender.settle(item, State.SYNCED)  # changed back: nothing to do
            continue
        items.append(item)
    sender.send(PAYMENTS, items)


def _find_lost_payments(context: PushContext, links: list[XeroLink]) -> None:
    """Payments whose creation had an unknown outcome: found among those changed since, by Reference."""
    lost = {link.local_id: link for link in links if link.state == State.IN_FLIGHT and not link.xero_id}
    if not lost or context.sender.time_is_up():  # out of time: they wait, still in flight, for the next run
        return
    since = min(link.in_flight_since for link in lost.values()) - LOOKBACK
    for found, _ in xero_pages(context.gateway, "get_payments", "Payments", if_modified_since=since):
        for payment in found:
            link = lost.get(mappers.receipt_id_from_reference(payment.get("Reference")))
            if link is not None and payment.get("Status") != "DELETED":
                link.xero_id = payment["PaymentID"]
                link.payload_hash = link.sent_hash  # it holds what we sent; payments never change
