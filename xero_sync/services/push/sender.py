"""Sending records to Xero 50 to a call, and recording what became of each.

Two of the exactly-once guards live here (design.md, "Exactly-once effect"): a batch is marked in flight
(committed) before its call, so a run that dies during it leaves the batch findable; and every write
carries an Idempotency-Key derived from the batch's content and its outbox rows, so a prompt retry of the
same batch is replayed by Xero instead of executed twice. Unchanged content is not sent at all.
"""

import datetime
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from ... import mappers, wording
from ...errors import XeroRejected, XeroUnavailable
from ...models import RecordKind, XeroLink
from ...ratelimit import PacedGateway
from ..cursors import Progress
from .links import LinkBook

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
# Xero's words for "it exists in Xero already" (created by a lost call or by hand): find it and try again.
RETRY_MARKERS = ("Invoice # must be unique", "The contact number")
State = XeroLink.State
ErrorBy = XeroLink.ErrorBy
Key = tuple[str, int]  # (kind, local id)


def _in_xero_already(record, payload: dict, message: str) -> bool:
    return any(marker in message for marker in RETRY_MARKERS)


def backoff_delay(attempts: int) -> datetime.timedelta:
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return datetime.timedelta(seconds=base * random.uniform(0.5, 1.5))


class XeroUnreachable(Exception):
    """Xero stopped answering during a batch; the rest waits for the next run."""


@dataclass
class PushReport:
    pushed: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    more_to_do: bool = False
    split_calls: int = 0  # calls made sending refused batches in halves


@dataclass
class ChunkLedger:
    """What became of a chunk's records, for settling its outbox rows: per (kind, local id), the newest
    outbox row covered; those whose push is over; those to retry and when; those the time budget did not
    reach."""

    entry_ids: dict[Key, int]
    settled: set[Key] = field(default_factory=set)
    retry: dict[Key, datetime.datetime] = field(default_factory=dict)
    unfinished: set[Key] = field(default_factory=set)


@dataclass(frozen=True)
class XeroWrite:
    """One kind's write call: how its batch is sent and how Xero's answer reads."""

    kind: RecordKind
    operation: str
    sdk_body_name: str
    body_key: str
    id_key: str
    extra: dict = field(default_factory=dict)
    # Xero's words for "this record cannot be changed any more": shown, and not retried in a loop.
    locked_markers: tuple[str, ...] = ()
    # A further check of a successful answer: an error to show, or None.
    check: Callable[[object, dict], str | None] | None = None
    # Whether a record Xero refused with this message can succeed when tried again (by default: it is in
    # Xero already, made by a lost call or by hand, and the next run finds it by its key).
    may_succeed_later: Callable[[object, dict, str], bool] | None = None
    # The kind of the outbox rows its records come from, when not its own (a refund's parts come with the
    # refund's): a new row makes a new Idempotency-Key, so a record sent again is not Xero's replay of the last.
    outbox_kind: RecordKind | None = None


@dataclass
class Item:
    """One record on its way: the record, its link, its payload and its payload's hash."""

    record: object
    link: XeroLink
    payload: dict
    digest: str
    key: str


class Sender:
    def __init__(self, *, tenant_id, gateway: PacedGateway, links: LinkBook, report: PushReport,
                 ledger: ChunkLedger, deadline: float, progress: Progress, now: datetime.datetime):
        self.tenant_id = tenant_id
        self.gateway = gateway
        self.links = links
        self.report = report
        self.ledger = ledger
        self.deadline = deadline
        self.progress = progress
        self.now = now

    def item(self, record, link: XeroLink, payload: dict, key: str) -> Item:
        link.xero_key = key
        return Item(record=record, link=link, payload=payload, digest=mappers.payload_hash(payload), key=key)

    def time_is_up(self) -> bool:
        """The run's budget is spent: start no new call; what is left waits for the next run."""
        return time.monotonic() > self.deadline

    def needs_sending(self, item: Item) -> bool:
        link = item.link
        if link.xero_id and link.state == State.IN_FLIGHT and link.payload_hash == link.sent_hash == item.digest:
            # Xero is known to hold what we sent (a payment found after an unknown outcome). An update whose
            # call failed keeps the hash of the older content Xero held, so it goes again.
            self.settle(item, State.SYNCED)
            return False
        if link.state == State.SYNCED and link.payload_hash == item.digest:
            self.settle(item, State.SYNCED, counted=False)
            return False
        return True

    def send(self, write: XeroWrite, items: list[Item], *, on_answer: Callable[[list[dict]], None] | None = None):
        """Send the items that need it, a batch per call; `on_answer` gets each answer's records that
        came back with an id, in the transaction that records the batch's results."""
        kind = write.kind
        items = [item for item in items if self.needs_sending(item)]
        if items:
            self.progress(f"{kind}s pushed", 0, len(items))
        for start in range(0, len(items), BATCH_SIZE):
            batch = items[start:start + BATCH_SIZE]
            if self.time_is_up():
                self.ledger.unfinished.update((kind, item.record.pk) for item in items[start:])
                self.report.more_to_do = True
                return
            self._mark_in_flight(batch)
            try:
                self._send_batch(write, batch, on_answer)
            except XeroUnavailable as error:
                unanswered = [item for item in batch if self._open(item)]
                self._transient_failure(kind, unanswered, items[start + len(batch):], str(error))
                self.links.flush()
                raise XeroUnreachable from error
            self.progress(f"{kind}s pushed", start + len(batch), len(items))
        self.links.flush()  # the stage's other outcomes (records waiting for their contact or sale, say)

    def _send_batch(self, write: XeroWrite, batch: list[Item], on_answer) -> None:
        """One call for the batch. A request Xero refuses as a whole (400: a body it cannot read) saved
        nothing, so it is split in halves, each a call of its own, until the element Xero cannot read
        fails alone with Xero's words and the others land: about 2·log2(50) calls more for one bad
        element, instead of 50 records wrongly refused and never retried."""
        try:
            answer = self.gateway.call(write.operation, **{write.sdk_body_name: {
                write.body_key: [item.payload for item in batch]}}, summarize_errors="false",
                idempotency_key=self._idempotency_key(write, batch), **write.extra)
        except XeroRejected as error:
            if len(batch) == 1:
                self.settle(batch[0], State.ERROR, error=str(error))
                self.links.flush()
                return
            logger.info("xero push: Xero refused a batch of %s %s (%s); sending it in halves",
                        len(batch), wording.kind_plural(write.kind), error)
            self.report.split_calls += 2
            middle = (len(batch) + 1) // 2
            self._send_batch(write, batch[:middle], on_answer)
            self._send_batch(write, batch[middle:], on_answer)
            return
        elements = answer.get(write.body_key, [])
        claimed: set[str] = set()
        for position, item in enumerate(batch):
            element = elements[position] if position < len(elements) else {}
            xero_id = str(element.get(write.id_key) or "")
            if xero_id and xero_id in claimed:
                # Xero put two of our records on one of its own: neither can be told apart there.
                self.settle(item, State.ERROR, error=f"Xero matched this to the same {write.kind} in Xero as "
                                                     f"another record of this batch (Xero id {xero_id}).")
                continue
            claimed.add(xero_id)
            self._record_result(write, item, element)
        with transaction.atomic():  # the batch's results land together
            if on_answer is not None:
                on_answer([element for element in elements if element.get(write.id_key)])
            self.links.flush()

    def _open(self, item: Item) -> bool:
        """Not yet answered in this run (neither settled nor set to retry)."""
        key = (str(item.link.kind), item.record.pk)
        return key not in self.ledger.settled and key not in self.ledger.retry

    def _idempotency_key(self, write: XeroWrite, batch: list[Item]) -> str:
        # Same content and same outbox rows -> same key, so Xero replays a retried batch; a later edit
        # (a new outbox row) gets a new key even if the content went back to an earlier value.
        parts = [str(self.tenant_id), write.operation] + [
            f"{item.record.pk}:{self.ledger.entry_ids.get((write.outbox_kind or write.kind, item.record.pk), 0)}:"
            f"{item.digest}"
            for item in batch]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _mark_in_flight(self, batch: list[Item]) -> None:
        """Committed before the call: a run that dies during it leaves the batch findable as in flight."""
        for item in batch:
            link = item.link
            link.state = State.IN_FLIGHT
            link.in_flight_since = link.in_flight_since or timezone.now()
            link.sent_hash = item.digest
            self.links.changed(link)
        self.links.flush()

    def _record_result(self, write: XeroWrite, item: Item, element: dict) -> None:
        messages = mappers.validation_messages(element)
        xero_id = element.get(write.id_key)
        if element.get("HasErrors") or element.get("HasValidationErrors") or messages or not xero_id:
            message = "; ".join(messages) or "Xero returned no result for this record."
            if xero_id:
                item.link.xero_id = xero_id
            retry = write.may_succeed_later or _in_xero_already
            if retry(item.record, item.payload, message):
                item.link.last_error, item.link.error_by = message, ErrorBy.XERO
                self.links.changed(item.link)
                self.retry_later(item, message)
                return
            locked = any(marker in message for marker in write.locked_markers)
            self.settle(item, State.LOCKED if locked else State.ERROR, error=message)
            return
        item.link.xero_id = xero_id
        item.link.xero_updated_at = mappers.parse_xero_datetime(element.get("UpdatedDateUTC"))
        problem = write.check(item.record, element) if write.check else None
        if problem:
            self.settle(item, State.ERROR, error=problem)
            return
        self.settle(item, State.SYNCED)

    def settle(self, item: Item, state: str, *, error: str = "", by: str = ErrorBy.XERO,
               counted: bool = True) -> None:
        """The record's push is over for now (synced or a failure to show): its outbox rows can go. `by` says
        who the error comes from: Xero's answer (the default: what comes back from a call, and what this
        site reads off Xero's answer), or this site's own check before sending."""
        link, kind = item.link, str(item.link.kind)
        link.state = state
        link.last_error, link.error_by = error, (by if error else "")
        if state == State.SYNCED:
            link.payload_hash = item.digest
            link.attempts = 0
            link.in_flight_since = None
            link.last_pushed_at = timezone.now()
        self.links.changed(link)
        if counted or error:
            self.links.event(link, "pushed" if state == State.SYNCED else state, error or f"Xero id {link.xero_id}")
        self.ledger.settled.add((kind, link.local_id))
        if counted:
            (self.report.pushed if state == State.SYNCED else self.report.failed)[kind] += 1
        if error:
            self.report.errors.append(f"{kind} {item.record}: {error}")
            logger.warning("xero push: %s %s (Xero id %s) not synced: %s", kind, item.record.pk,
                           link.xero_id or "none yet", error)

    def fail(self, record, link: XeroLink, error: str) -> None:
        """A record that cannot go yet (its contact or sale is not in Xero, it does not map, Xero is sure to
        refuse it): shown as this site's check, since nothing was sent."""
        self.settle(Item(record=record, link=link, payload={}, digest="", key=""), State.ERROR, error=error,
                    by=ErrorBy.SITE)

    def _transient_failure(self, kind: str, batch: list[Item], rest: list[Item], error: str) -> None:
        for item in batch:
            item.link.last_error, item.link.error_by = error, ErrorBy.XERO  # the call failed: Xero's end
            self.links.changed(item.link)
            self.retry_later(item, error)
        # The rest were never sent: they wait as long as the failed batch, without using an attempt.
        later = self.now + backoff_delay(max((item.link.attempts for item in batch), default=1))
        for item in rest:
            self.ledger.retry[(kind, item.record.pk)] = later

    def retry_later(self, item: Item, error: str) -> None:
        """Counts an attempt; after MAX_ATTEMPTS the record is given up on (shown, and in the digest)."""
        link, kind = item.link, str(item.link.kind)
        link.attempts += 1
        if link.attempts >= MAX_ATTEMPTS:
            self.settle(item, State.DEAD, error=f"Gave up after {link.attempts} attempts: {error}")
            return
        self.links.changed(link)
        self.ledger.retry[(kind, item.record.pk)] = self.now + backoff_delay(link.attempts)
        self.report.failed[kind] += 1
        self.report.errors.append(f"{kind} {item.record}: {error} (attempt {link.attempts}, will retry)")
