"""The push's run loop: what the outbox holds, a chunk of records at a time, contacts, then invoices (and
voids), then payments, then refunds (credit notes, allocations, refund payments); then the chunk's outbox
rows are settled."""

from collections import defaultdict

from django.utils import timezone

from ecommerce.models import Sale

from ...models import RecordKind, XeroConnection
from ...ratelimit import PacedGateway
from ...selectors import sales_in_or_for_xero
from ..contact_index import ContactIndex
from ..cursors import Progress, no_progress
from ..outbox import outbox_pending, outbox_settle
from ..run_config import RunConfig
from .contacts import push_contacts, sales_waiting_for
from .context import PushContext
from .invoices import push_invoices
from .links import LinkBook
from .payments import push_payments, receipts_for_push, receipts_waiting_for
from .refunds import push_refunds, refunds_for_push, refunds_waiting_for
from .sender import ChunkLedger, PushReport, Sender, XeroUnreachable, backoff_delay

# Records handled together from the outbox: 30 full batches, and the memory of a run stays that of one chunk.
CHUNK_RECORDS = 1500
# A refund's allocation and refund payment settle under the refund's outbox row.
OUTBOX_KIND = {RecordKind.ALLOCATION: RecordKind.REFUND, RecordKind.REFUND_PAYMENT: RecordKind.REFUND}


class Push:
    def __init__(self, *, connection: XeroConnection, gateway: PacedGateway, config: RunConfig,
                 contact_index: ContactIndex, cutoff_id: int, deadline: float, progress: Progress | None = None):
        self.tenant_id = connection.tenant_id
        self.gateway = gateway
        self.config = config
        self.contact_index = contact_index
        self.cutoff_id = cutoff_id
        self.deadline = deadline
        self.progress = progress or no_progress
        self.links = LinkBook(tenant_id=self.tenant_id)
        self.report = PushReport()

    def run(self) -> PushReport:
        """Push what the outbox holds up to the cutoff, oldest changes first, a chunk of records at a time
        so a backfill of any size needs the memory of one chunk."""
        now = timezone.now()
        chunk: list[tuple[str, int, int]] = []
        for row in outbox_pending(cutoff_id=self.cutoff_id, now=now, chunk_size=CHUNK_RECORDS):
            chunk.append(row)
            if len(chunk) == CHUNK_RECORDS:
                if not self._push_chunk(chunk, now):
                    return self.report
                chunk = []
        if chunk:
            self._push_chunk(chunk, now)
        return self.report

    def _push_chunk(self, rows: list[tuple[str, int, int]], now) -> bool:
        """Push one chunk end to end; False when the run must stop (Xero unreachable, or out of time)."""
        ledger = ChunkLedger(entry_ids={(kind, local_id): newest for kind, local_id, newest in rows})
        sender = Sender(tenant_id=self.tenant_id, gateway=self.gateway, links=self.links, report=self.report,
                        ledger=ledger, deadline=self.deadline, progress=self.progress, now=now)
        context = PushContext(tenant_id=self.tenant_id, gateway=self.gateway, config=self.config,
                              contact_index=self.contact_index, links=self.links, sender=sender)
        changed: dict[str, set[int]] = defaultdict(set)
        for kind, local_id, _ in rows:
            changed[kind].add(local_id)
        # A changed receipt brings its sale if the sale is not in Xero yet, and a sale its contact.
        receipts = receipts_for_push(context, changed[RecordKind.RECEIPT])
        refunds = refunds_for_push(context, changed[RecordKind.REFUND])
        sale_links = self.links.read(RecordKind.SALE, {record.sale_id for record in [*receipts, *refunds]})
        sale_ids = changed[RecordKind.SALE] | {
            record.sale_id for record in [*receipts, *refunds] if not sale_links[record.sale_id].xero_id}
        # Confirmed sales, cancelled ones in Xero, and cancelled ones whose money went through Xero; not one
        # cancelled before any of it reached Xero with no such money: nothing of it goes, refunds included.
        sales = list(Sale.objects.filter(sales_in_or_for_xero(self.tenant_id), pk__in=sale_ids).distinct()
                     .prefetch_related("lines", "receipts", "refunds", "payments", "credit_allocations"))
        contact_links = self.links.read(RecordKind.CONTACT, {sale.contact_id for sale in sales})
        contact_ids = changed[RecordKind.CONTACT] | {
            sale.contact_id for sale in sales if not contact_links[sale.contact_id].xero_id}
        stopped = False
        try:
            new_contacts = push_contacts(context, contact_ids)
            sales += sales_waiting_for(context, new_contacts, {sale.pk for sale in sales})
            new_invoices = push_invoices(context, sales)
            receipts += receipts_waiting_for(context, new_invoices, {receipt.pk for receipt in receipts})
            push_payments(context, receipts)
            refunds += refunds_waiting_for(context, new_invoices, {refund.pk for refund in refunds})
            push_refunds(context, refunds)
        except XeroUnreachable:
            stopped = True
        self._settle_outbox(ledger, stopped=stopped, now=now)
        return not (stopped or self.report.more_to_do)

    def _settle_outbox(self, ledger: ChunkLedger, *, stopped: bool, now) -> None:
        """Drop the rows of records this chunk finished with (or that Xero does not take: drafts, contacts
        not for Xero, receipts of methods that do not push); delay those to retry; keep the ones the time
        budget did not reach. If Xero stopped answering, everything not finished waits."""
        self.links.flush()
        for part_kind, kind in OUTBOX_KIND.items():  # a refund waits if any of its parts does
            for (kind_of, local_id), when in list(ledger.retry.items()):
                if kind_of == part_kind:
                    ledger.retry.setdefault((kind, local_id), when)
            ledger.unfinished.update((kind, local_id) for kind_of, local_id in list(ledger.unfinished)
                                     if kind_of == part_kind)
        if stopped:
            later = now + backoff_delay(1)
            for key in ledger.entry_ids:
                if key not in ledger.settled and key not in ledger.retry:
                    ledger.retry[key] = later
        done = [key for key in ledger.entry_ids if key not in ledger.retry and key not in ledger.unfinished]
        outbox_settle(cutoff_id=self.cutoff_id, done=done, retry=ledger.retry, tenant_id=self.tenant_id)
