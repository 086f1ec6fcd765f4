"""Pushing recorded changes to Xero: contacts, then invoices, then payments, 50 to a call.

Exactly-once effect in Xero comes from three guards (design.md, "Exactly-once effect"):
- before a batch is sent, its records are marked in flight (a short transaction of its own); if the
  worker dies or the call times out, the next run finds them in flight without a Xero id and looks them
  up by the key Xero holds (ContactNumber, InvoiceNumber, the payment's Reference) before sending again;
- every write carries an Idempotency-Key derived from the batch's content and its outbox rows, so a
  prompt retry of the same batch is replayed by Xero instead of executed twice;
- unchanged content (same payload hash) is not sent at all.
No database transaction is open while a call is in flight.
"""

import datetime
import hashlib
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection as database
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.db.models.functions import Lower
from django.utils import timezone

from ecommerce import selectors
from ecommerce.models import Contact, Receipt, Sale

from .. import mappers
from ..errors import XeroRejected, XeroUnavailable
from ..models import (
    OutboxEntry,
    PaymentMethodConfig,
    RecordKind,
    SyncEvent,
    TaxMapping,
    XeroConnection,
    XeroContactIndex,
    XeroLink,
)
from ..ratelimit import PacedGateway
from .configuration import sync_settings
from .outbox import outbox_due_entries
from .pull import Pull

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
# Records handled together from the outbox: 30 full batches, and the memory of a run stays that of one chunk.
CHUNK_RECORDS = 1500
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
# Xero's clocks and ours differ a little; look back this far when asking "what changed since".
LOOKBACK = datetime.timedelta(minutes=2)
INVOICE_NUMBERS_PER_LOOKUP = 40  # Xero's URLs give out at about 2 KB
# Xero's words for "this invoice has payments and cannot be changed" (docs/xero-api.md section 7).
LOCKED_MARKERS = (
    "cannot be edited as it has a payment",
    "not of valid status for modification",
    "because it has payments or credit notes allocated",
)
RETRY_MARKERS = ("Invoice # must be unique", "is already assigned to another contact")
State = XeroLink.State
# What the push changes on a link; written for a whole batch in one statement.
LINK_FIELDS = ["xero_id", "xero_key", "xero_name", "payload_hash", "sent_hash", "state", "last_error", "attempts",
               "in_flight_since", "xero_updated_at", "last_pushed_at"]


# Told how far a long run has got: (what, done, total or None when unknown). The command draws a bar.
Progress = Callable[[str, int, int | None], None]


class _StopPushing(Exception):
    """Xero is unreachable; the rest waits for the next run."""


def backoff_delay(attempts: int) -> datetime.timedelta:
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return datetime.timedelta(seconds=base * random.uniform(0.5, 1.5))


@dataclass
class PushReport:
    pushed: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    more_to_do: bool = False


@dataclass
class _Item:
    """One record on its way: the record, its link, its payload and its payload's hash."""

    record: object
    link: XeroLink
    payload: dict
    digest: str
    key: str


class Push:
    def __init__(self, *, connection: XeroConnection, gateway: PacedGateway, pull: Pull, cutoff_id: int,
                 deadline: float, progress: Progress | None = None):
        self.connection = connection
        self.progress = progress or (lambda what, done, total: None)
        self.pull = pull
        self.tenant_id = connection.tenant_id
        self.gateway = gateway
        self.cutoff_id = cutoff_id
        self.deadline = deadline
        self.report = PushReport()
        self.now = timezone.now()
        # Per (kind, local_id): the newest outbox row this run covers; settled records lose their rows.
        self.entry_ids: dict[tuple[str, int], int] = {}
        self.retry: dict[tuple[str, int], datetime.datetime] = {}
        self.unfinished: set[tuple[str, int]] = set()
        self.settled: set[tuple[str, int]] = set()
        self.stopped = False
        # Link changes and history events not yet written: a batch's results go in two statements, not
        # three per record (_flush). _links flushes before it reads, and each stage ends with a flush, so
        # no query of links sees stale state.
        self.unsaved_links: dict[int, XeroLink] = {}
        self.unsaved_events: list[tuple[XeroLink, str, str]] = []

    # --- The run --------------------------------------------------------------------------------------

    def run(self) -> PushReport:
        """Push what the outbox holds, oldest changes first, a chunk of records at a time so a backfill of
        any size needs the memory of one chunk."""
        rows = (outbox_due_entries(cutoff_id=self.cutoff_id, now=self.now).values("kind", "local_id")
                .annotate(newest=Max("id")).order_by("newest").values_list("kind", "local_id", "newest"))
        settings_row = sync_settings()
        self.sales_account = settings_row.default_sales_account_code
        self.shipping_account = settings_row.shipping_account_code or self.sales_account
        self.tax_types = dict(TaxMapping.objects.values_list("tax_code", "xero_tax_type"))
        self.tax_rates = {rate["TaxType"]: Decimal(rate["EffectiveRate"]) for rate in self.connection.tax_rates_cache
                          if rate.get("EffectiveRate") not in (None, "", "None")}
        chunk: list[tuple[str, int, int]] = []
        for row in rows.iterator(chunk_size=CHUNK_RECORDS):
            chunk.append(row)
            if len(chunk) == CHUNK_RECORDS:
                if not self._push_chunk(chunk):
                    return self.report
                chunk = []
        if chunk:
            self._push_chunk(chunk)
        return self.report

    def _push_chunk(self, rows: list[tuple[str, int, int]]) -> bool:
        """Push one chunk end to end (contacts, invoices, payments); False when the run must stop."""
        self.entry_ids = {(kind, local_id): newest for kind, local_id, newest in rows}
        self.retry, self.unfinished, self.settled = {}, set(), set()
        changed: dict[str, set[int]] = defaultdict(set)
        for kind, local_id, _ in rows:
            changed[kind].add(local_id)
        receipts = self._push_receipts_wanted(changed[RecordKind.RECEIPT])
        sale_links = self._links(RecordKind.SALE, {receipt.sale_id for receipt in receipts})
        sale_ids = changed[RecordKind.SALE] | {r.sale_id for r in receipts if not sale_links[r.sale_id].xero_id}
        sales = list(Sale.objects.filter(pk__in=sale_ids, status=Sale.Status.CONFIRMED).prefetch_related("lines"))
        contact_links = self._links(RecordKind.CONTACT, {sale.contact_id for sale in sales})
        contact_ids = changed[RecordKind.CONTACT] | {
            sale.contact_id for sale in sales if not contact_links[sale.contact_id].xero_id}
        try:
            new_contacts = self._push_contacts(contact_ids)
            sales += self._waiting_sales(new_contacts, {sale.pk for sale in sales})
            new_invoices = self._push_invoices(sales)
            receipts += self._waiting_receipts(new_invoices, {receipt.pk for receipt in receipts})
            self._push_payments(receipts)
        except _StopPushing:
            self.stopped = True
        self._settle_outbox()
        return not (self.stopped or self.report.more_to_do)

    def _time_is_up(self) -> bool:
        return time.monotonic() > self.deadline

    # --- Contacts -------------------------------------------------------------------------------------

    def _push_contacts(self, contact_ids: set[int]) -> set[int]:
        """Push contacts that have a confirmed sale, or are in Xero already (their sale may since have been
        cancelled, but their edits still belong in Xero); returns the ids that got a Xero id in this run."""
        confirmed = Sale.objects.filter(contact=OuterRef("pk"), status=Sale.Status.CONFIRMED)
        in_xero = XeroLink.objects.filter(tenant_id=self.tenant_id, kind=RecordKind.CONTACT, local_id=OuterRef("pk"),
                                          xero_id__isnull=False)
        contacts = list(Contact.objects.filter(pk__in=contact_ids).filter(Exists(confirmed) | Exists(in_xero)))
        links = self._links(RecordKind.CONTACT, [contact.pk for contact in contacts])
        had_id = {contact.pk for contact in contacts if links[contact.pk].xero_id}
        if contacts:
            self.pull.read_contacts()  # brings the contact index up to date (the pull needs this read anyway)
        if len(had_id) < len(contacts):
            self._match_existing_contacts(contacts, links)
        names = self._xero_names(contacts, links)
        items = []
        for contact in contacts:
            link = links[contact.pk]
            if link.xero_id and link.state == State.SYNCED and not self.pull.contact_conflict(contact=contact,
                                                                                               link=link):
                continue  # changed in Xero more recently: the pull brings Xero's version in instead
            payload = mappers.contact_payload(contact, name=names[contact.pk], xero_id=link.xero_id)
            link.xero_name = names[contact.pk] if names[contact.pk] != contact.display_name else ""
            items.append(self._item(RecordKind.CONTACT, contact, link, payload, mappers.contact_number(contact.pk)))
        self._send(RecordKind.CONTACT, [item for item in items if self._needs_sending(item)],
                   operation="update_or_create_contacts", body_key="Contacts", id_key="ContactID")
        return {item.record.pk for item in items if item.link.xero_id and item.record.pk not in had_id}

    def _match_existing_contacts(self, contacts: list[Contact], links: dict[int, XeroLink]) -> None:
        """Adopt a Xero contact this website contact already is: by ContactNumber (ours, e.g. after a
        crash), then by email, never one another website contact is linked to."""
        unlinked = [contact for contact in contacts if not links[contact.pk].xero_id]
        numbers = {mappers.contact_number(contact.pk): contact for contact in unlinked}
        emails = {contact.email.lower(): contact for contact in unlinked if contact.email}
        index = XeroContactIndex.objects.filter(tenant_id=self.tenant_id).annotate(lower_email=Lower("email"))
        by_number = {row.contact_number: row.xero_id for row in index.filter(contact_number__in=numbers)}
        by_email = {row.lower_email: row.xero_id for row in index.filter(lower_email__in=emails, status="ACTIVE")}
        taken = set(XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.CONTACT,
            xero_id__in=list(by_number.values()) + list(by_email.values()),
        ).values_list("xero_id", flat=True))
        for contact in unlinked:
            found = by_number.get(mappers.contact_number(contact.pk)) or by_email.get(contact.email.lower())
            if found and found not in taken:
                links[contact.pk].xero_id = found
                taken.add(found)
                logger.info("xero contact %s matched existing Xero contact %s", contact.pk, found)

    def _xero_names(self, contacts: list[Contact], links: dict[int, XeroLink]) -> dict[int, str]:
        """Names unique among the organisation's active contacts: a second David Smith becomes
        'David Smith (email)', never merged into the first."""
        wanted = {contact.pk: contact.display_name for contact in contacts}
        taken = defaultdict(set)  # lower name -> Xero ids holding it
        for row in XeroContactIndex.objects.filter(tenant_id=self.tenant_id, status="ACTIVE").annotate(
                lower_name=Lower("name")).filter(lower_name__in={name.lower() for name in wanted.values()}):
            taken[row.lower_name].add(row.xero_id)
        names, claimed = {}, set()
        for contact in sorted(contacts, key=lambda c: (links[c.pk].xero_id is None, c.pk)):
            own = links[contact.pk].xero_id
            plain = wanted[contact.pk]
            others = taken[plain.lower()] - {own}
            use_plain = not others and plain.lower() not in claimed
            names[contact.pk] = plain if use_plain else mappers.distinguishable_name(contact)
            claimed.add(names[contact.pk].lower())
        return names

    def _waiting_sales(self, contact_ids: set[int], already: set[int]) -> list[Sale]:
        """Confirmed sales of contacts that just reached Xero and that were left waiting for them."""
        if not contact_ids:
            return []
        synced = XeroLink.objects.filter(tenant_id=self.tenant_id, kind=RecordKind.SALE,
                                         local_id=OuterRef("pk"), state=State.SYNCED)
        return list(Sale.objects.filter(contact_id__in=contact_ids, status=Sale.Status.CONFIRMED)
                    .exclude(pk__in=already).exclude(Exists(synced)).prefetch_related("lines"))

    # --- Invoices -------------------------------------------------------------------------------------

    def _push_invoices(self, sales: list[Sale]) -> set[int]:
        links = self._links(RecordKind.SALE, [sale.pk for sale in sales])
        contact_links = self._links(RecordKind.CONTACT, {sale.contact_id for sale in sales})
        self._find_lost_invoices([links[sale.pk] for sale in sales], {sale.pk: sale for sale in sales})
        items = []
        for sale in sales:
            link, contact_link = links[sale.pk], contact_links[sale.contact_id]
            if link.state == State.LOCKED:
                continue  # Xero refused an edit once; it is shown, and not retried in a loop
            if not contact_link.xero_id:
                self._fail(RecordKind.SALE, sale, link, f"Waiting for its contact, which is not in Xero yet: "
                           f"{contact_link.last_error or 'not sent'}")
                continue
            try:
                payload = mappers.invoice_payload(
                    sale, list(sale.lines.all()), contact_xero_id=contact_link.xero_id,
                    sales_account=self.sales_account, shipping_account=self.shipping_account,
                    tax_types=self.tax_types, tax_rates=self.tax_rates, xero_id=link.xero_id,
                )
            except mappers.MappingError as error:
                self._fail(RecordKind.SALE, sale, link, str(error))
                continue
            items.append(self._item(RecordKind.SALE, sale, link, payload, sale.number))
        had_id = {item.record.pk for item in items if item.link.xero_id}
        self._send(RecordKind.SALE, [item for item in items if self._needs_sending(item)],
                   operation="update_or_create_invoices", body_key="Invoices", id_key="InvoiceID",
                   extra={"unitdp": 4})
        return {item.record.pk for item in items if item.link.xero_id and item.record.pk not in had_id}

    def _find_lost_invoices(self, links: list[XeroLink], sales: dict[int, Sale]) -> None:
        """Invoices whose creation had an unknown outcome: ask Xero for them by number."""
        lost = {sales[link.local_id].number: link for link in links
                if link.state == State.IN_FLIGHT and not link.xero_id}
        numbers = sorted(lost)
        for start in range(0, len(numbers), INVOICE_NUMBERS_PER_LOOKUP):
            chunk = numbers[start:start + INVOICE_NUMBERS_PER_LOOKUP]
            found = self.gateway.call("get_invoices", invoice_numbers=chunk, summary_only=True).get("Invoices", [])
            for invoice in found:
                link = lost.get(invoice.get("InvoiceNumber"))
                if link is not None and invoice.get("Type", "ACCREC") == "ACCREC":
                    link.xero_id = invoice["InvoiceID"]
                    link.payload_hash = ""  # what Xero holds is unknown: send the sale again as an update

    def _waiting_receipts(self, sale_ids: set[int], already: set[int]) -> list[Receipt]:
        if not sale_ids:
            return []
        synced = XeroLink.objects.filter(tenant_id=self.tenant_id, kind=RecordKind.RECEIPT,
                                         local_id=OuterRef("pk"), state=State.SYNCED)
        return [receipt for receipt in self._push_receipts_wanted(
            set(Receipt.objects.filter(sale_id__in=sale_ids).exclude(pk__in=already).exclude(Exists(synced))
                .values_list("pk", flat=True)))]

    # --- Payments -------------------------------------------------------------------------------------

    def _push_receipts_wanted(self, receipt_ids: set[int]) -> list[Receipt]:
        """Receipts whose payment method pushes to Xero; the others never leave the website."""
        pushing = PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PUSH).exclude(
            xero_account_code="")
        self.payment_accounts = dict(pushing.values_list("payment_method_id", "xero_account_code"))
        return list(Receipt.objects.filter(pk__in=receipt_ids, payment_method_id__in=self.payment_accounts)
                    .select_related("sale"))

    def _push_payments(self, receipts: list[Receipt]) -> None:
        links = self._links(RecordKind.RECEIPT, [receipt.pk for receipt in receipts])
        sale_links = self._links(RecordKind.SALE, {receipt.sale_id for receipt in receipts})
        self._find_lost_payments([links[receipt.pk] for receipt in receipts])
        items = []
        for receipt in receipts:
            link, sale_link = links[receipt.pk], sale_links[receipt.sale_id]
            if not sale_link.xero_id:
                self._fail(RecordKind.RECEIPT, receipt, link,
                           f"Waiting for sale {receipt.sale.number} to reach Xero: {sale_link.last_error or 'not sent'}")
                continue
            payload = mappers.payment_payload(receipt, invoice_xero_id=sale_link.xero_id,
                                              account_code=self.payment_accounts[receipt.payment_method_id])
            item = self._item(RecordKind.RECEIPT, receipt, link, payload, mappers.receipt_key(receipt.pk))
            if link.xero_id and link.payload_hash and link.payload_hash != item.digest:
                # Xero payments cannot be edited, only deleted; say so rather than diverge silently.
                self._settle(item, State.CONFLICT, error=(
                    "This receipt was changed after it reached Xero, and Xero payments cannot be edited. "
                    "Delete the payment in Xero and requeue the receipt, or change the receipt back."))
                continue
            if link.xero_id and link.payload_hash == item.digest and link.state != State.SYNCED:
                self._settle(item, State.SYNCED)  # changed back: nothing to do
                continue
            items.append(item)
        self._send(RecordKind.RECEIPT, [item for item in items if self._needs_sending(item)],
                   operation="create_payments", body_key="Payments", id_key="PaymentID")

    def _find_lost_payments(self, links: list[XeroLink]) -> None:
        lost = {link.local_id: link for link in links if link.state == State.IN_FLIGHT and not link.xero_id}
        if not lost:
            return
        since = min(link.in_flight_since for link in lost.values()) - LOOKBACK
        page = 1
        while True:
            found = self.gateway.call("get_payments", if_modified_since=since, page=page, page_size=1000).get(
                "Payments", [])
            for payment in found:
                link = lost.get(mappers.receipt_id_from_reference(payment.get("Reference")))
                if link is not None and payment.get("Status") != "DELETED":
                    link.xero_id = payment["PaymentID"]
                    link.payload_hash = link.sent_hash  # it holds what we sent; payments never change
            if len(found) < 1000:
                break
            page += 1

    # --- Sending and recording results ---------------------------------------------------------------

    def _item(self, kind: str, record, link: XeroLink, payload: dict, key: str) -> _Item:
        link.xero_key = key
        return _Item(record=record, link=link, payload=payload, digest=mappers.payload_hash(payload), key=key)

    def _needs_sending(self, item: _Item) -> bool:
        link = item.link
        if link.xero_id and link.state == State.IN_FLIGHT and link.payload_hash and link.sent_hash == item.digest:
            # A payment found after an unknown outcome already holds what we sent.
            self._settle(item, State.SYNCED)
            return False
        if link.state == State.SYNCED and link.payload_hash == item.digest:
            self._settle(item, State.SYNCED, counted=False)
            return False
        return True

    def _send(self, kind: str, items: list[_Item], *, operation: str, body_key: str, id_key: str,
              extra: dict | None = None) -> None:
        if items:
            self.progress(f"{kind}s pushed", 0, len(items))
        for start in range(0, len(items), BATCH_SIZE):
            batch = items[start:start + BATCH_SIZE]
            if self._time_is_up():
                self.unfinished.update((kind, item.record.pk) for item in items[start:])
                self.report.more_to_do = True
                return
            self._mark_in_flight(batch)
            body = {body_key: [item.payload for item in batch]}
            try:
                answer = self.gateway.call(operation, **{_sdk_body_name(operation): body},
                                           summarize_errors="false", idempotency_key=self._idempotency_key(
                                               kind, operation, batch), **(extra or {}))
            except XeroUnavailable as error:
                self._transient_failure(kind, batch, items[start + len(batch):], str(error))
                self._flush()
                raise _StopPushing from error
            except XeroRejected as error:
                for item in batch:
                    self._settle(item, State.ERROR, error=str(error))
                self._flush()
                continue
            elements = answer.get(body_key, [])
            for position, item in enumerate(batch):
                element = elements[position] if position < len(elements) else {}
                self._record_result(kind, item, element, id_key)
            with transaction.atomic():  # the batch's results land together
                if kind == RecordKind.CONTACT:
                    # Into the index at once, from Xero's answer: a namesake later in this run must not take
                    # the name.
                    self.pull.index_contacts([element for element in elements if element.get(id_key)])
                self._flush()
            self.progress(f"{kind}s pushed", start + len(batch), len(items))
        self._flush()  # the stage's other outcomes (records waiting for their contact or sale, say)

    def _idempotency_key(self, kind: str, operation: str, batch: list[_Item]) -> str:
        # Same content and same outbox rows -> same key, so Xero replays a retried batch; a later edit
        # (a new outbox row) gets a new key even if the content went back to an earlier value.
        parts = [str(self.tenant_id), operation] + [
            f"{item.record.pk}:{self.entry_ids.get((kind, item.record.pk), 0)}:{item.digest}" for item in batch]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _mark_in_flight(self, batch: list[_Item]) -> None:
        """Committed before the call: a run that dies during it leaves the batch findable as in flight."""
        for item in batch:
            link = item.link
            link.state = State.IN_FLIGHT
            link.in_flight_since = link.in_flight_since or timezone.now()
            link.sent_hash = item.digest
            self._unsaved(link)
        self._flush()

    def _record_result(self, kind: str, item: _Item, element: dict, id_key: str) -> None:
        messages = mappers.validation_messages(element)
        if element.get("HasErrors") or element.get("HasValidationErrors") or messages or not element.get(id_key):
            message = "; ".join(messages) or "Xero returned no result for this record."
            if element.get(id_key):
                item.link.xero_id = element[id_key]
            if any(marker in message for marker in RETRY_MARKERS):
                # It exists in Xero already (created by a lost call or by hand): find it and try again.
                item.link.last_error = message
                self._unsaved(item.link)
                self._schedule_retry(kind, item, message, count_attempt=True)
                return
            locked = kind == RecordKind.SALE and any(marker in message for marker in LOCKED_MARKERS)
            self._settle(item, State.LOCKED if locked else State.ERROR, error=message)
            return
        item.link.xero_id = element[id_key]
        item.link.xero_updated_at = mappers.parse_xero_datetime(element.get("UpdatedDateUTC"))
        if kind == RecordKind.SALE:
            expected = selectors.sale_totals(item.record).total
            total = element.get("Total")
            if total is not None and Decimal(str(total)) != expected:
                self._settle(item, State.ERROR, error=(
                    f"Xero's total {total} differs from the website's {expected}: check the tax mapping "
                    "and the lines."))
                return
        self._settle(item, State.SYNCED)

    def _settle(self, item: _Item, state: str, *, error: str = "", counted: bool = True) -> None:
        """The record's push is over for now (synced or a failure to show): its outbox rows can go."""
        link, kind = item.link, str(item.link.kind)
        link.state = state
        link.last_error = error
        if state == State.SYNCED:
            link.payload_hash = item.digest
            link.attempts = 0
            link.in_flight_since = None
            link.last_pushed_at = timezone.now()
        self._unsaved(link)
        if counted or error:
            self.unsaved_events.append((link, "pushed" if state == State.SYNCED else state,
                                        error or f"Xero id {link.xero_id}"))
        self.settled.add((kind, link.local_id))
        if counted:
            (self.report.pushed if state == State.SYNCED else self.report.failed)[kind] += 1
        if error:
            self.report.errors.append(f"{kind} {item.record}: {error}")
            logger.warning("xero push %s %s (xero %s): %s", kind, item.record.pk, link.xero_id, error)

    def _fail(self, kind: str, record, link: XeroLink, error: str) -> None:
        self._settle(_Item(record=record, link=link, payload={}, digest="", key=""), State.ERROR, error=error)

    def _transient_failure(self, kind: str, batch: list[_Item], rest: list[_Item], error: str) -> None:
        for item in batch:
            item.link.last_error = error
            self._unsaved(item.link)
            self._schedule_retry(kind, item, error, count_attempt=True)
        # The rest were never sent: they wait as long as the failed batch, without using an attempt.
        later = self.now + backoff_delay(max((item.link.attempts for item in batch), default=1))
        for item in rest:
            self.retry[(kind, item.record.pk)] = later

    def _schedule_retry(self, kind: str, item: _Item, error: str, *, count_attempt: bool) -> None:
        link = item.link
        if count_attempt:
            link.attempts += 1
        if link.attempts >= MAX_ATTEMPTS:
            self._settle(item, State.DEAD, error=f"Gave up after {link.attempts} attempts: {error}")
            return
        self._unsaved(link)
        self.retry[(kind, item.record.pk)] = self.now + backoff_delay(link.attempts)
        self.report.failed[kind] += 1
        self.report.errors.append(f"{kind} {item.record}: {error} (attempt {link.attempts}, will retry)")

    def _unsaved(self, link: XeroLink) -> None:
        self.unsaved_links[id(link)] = link

    def _flush(self) -> None:
        """Write the pending link changes (one upsert, new links get their ids back) and history events (one
        insert). Django's bulk_update builds a CASE per field and record, which costs more than it saves."""
        if not self.unsaved_links and not self.unsaved_events:
            return
        links = list(self.unsaved_links.values())
        with transaction.atomic():
            if not database.features.can_return_rows_from_bulk_insert:
                for link in links:  # an SQLite older than 3.35 cannot return the ids of new rows
                    link.save()
            else:
                XeroLink.objects.bulk_create(links, update_conflicts=True, update_fields=LINK_FIELDS,
                                             unique_fields=["tenant_id", "kind", "local_id"])
            SyncEvent.objects.bulk_create(SyncEvent(link=link, action=action, detail=detail)
                                          for link, action, detail in self.unsaved_events)
        self.unsaved_links, self.unsaved_events = {}, []

    def _links(self, kind: str, local_ids) -> dict[int, XeroLink]:
        self._flush()  # what this reads must include what this run has decided
        local_ids = set(local_ids)
        found = {link.local_id: link for link in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=kind, local_id__in=local_ids)}
        return {local_id: found.get(local_id) or XeroLink(tenant_id=self.tenant_id, kind=kind, local_id=local_id)
                for local_id in local_ids}

    def _settle_outbox(self) -> None:
        """Drop the rows of records this run finished with (or that Xero does not take: drafts, contacts
        not in Xero and without a confirmed sale, receipts of methods that do not push); delay those to retry; keep the
        ones the time budget did not reach. If Xero stopped answering, everything not finished waits."""
        self._flush()
        if self.stopped:
            later = self.now + backoff_delay(1)
            for key in self.entry_ids:
                if key not in self.settled and key not in self.retry:
                    self.retry[key] = later
        done = defaultdict(list)
        for kind, local_id in self.entry_ids:
            if (kind, local_id) not in self.retry and (kind, local_id) not in self.unfinished:
                done[kind].append(local_id)
        with transaction.atomic():
            for kind, local_ids in done.items():
                OutboxEntry.objects.filter(kind=kind, local_id__in=local_ids, id__lte=self.cutoff_id).delete()
            for (kind, local_id), when in self.retry.items():
                OutboxEntry.objects.filter(kind=kind, local_id=local_id, id__lte=self.cutoff_id).update(not_before=when)


def _sdk_body_name(operation: str) -> str:
    return {"update_or_create_contacts": "contacts", "update_or_create_invoices": "invoices",
            "create_payments": "payments"}[operation]
