"""The pull's run loop: contacts, the weekly customer list, what earlier pulls could not take in, invoices,
credit notes, payments; all with the outbox off, so nothing brought in is pushed back."""

from ...models import PullCursor, XeroConnection, XeroRecordKind
from ...ratelimit import PacedGateway
from ..contact_index import ContactIndex
from ..cursors import ChangesReader
from ..outbox import outbox_suppressed
from ..run_config import RunConfig
from .contacts import apply_contacts, fetch_contacts, reconcile_customers
from .context import PullContext
from .credit_notes import fetch_credit_notes, pull_credit_notes
from .failures import PullFailures, PullReport
from .invoices import fetch_invoices, pull_invoices
from .payments import fetch_payments, pull_payments


class Pull:
    def __init__(self, *, connection: XeroConnection, gateway: PacedGateway, config: RunConfig,
                 contact_index: ContactIndex, reader: ChangesReader):
        report = PullReport()
        failures = PullFailures(tenant_id=connection.tenant_id, report=report,
                                seen_up_to={} if reader.full else _seen_up_to(connection.tenant_id))
        self.context = PullContext(
            tenant_id=connection.tenant_id, gateway=gateway, config=config, contact_index=contact_index,
            reader=reader, failures=failures, report=report)

    @property
    def report(self) -> PullReport:
        return self.context.report

    def run(self) -> PullReport:
        context = self.context
        with outbox_suppressed():
            apply_contacts(context, context.contact_index.changes())
            context.reader.advance(PullCursor.Entity.CONTACTS)  # applied: the next pull reads from here
            reconcile_customers(context)
            self._retry_earlier_failures()
            pull_invoices(context)
            pull_credit_notes(context)  # after invoices: their allocations name invoices
            pull_payments(context)
        return context.report

    def _retry_earlier_failures(self) -> None:
        """Fetch again, by id, what earlier pulls could not take in (the cursor has moved past them)."""
        context, failures = self.context, self.context.failures
        fetch_contacts(context, failures.to_fetch_again(XeroRecordKind.CONTACT))
        fetch_invoices(context, failures.to_fetch_again(XeroRecordKind.INVOICE))
        fetch_credit_notes(context, failures.to_fetch_again(XeroRecordKind.CREDIT_NOTE))
        fetch_payments(context, failures.to_fetch_again(XeroRecordKind.PAYMENT))


# The cursors whose records the pull fails one by one, by the kind of record they read.
CURSOR_KINDS = {PullCursor.Entity.INVOICES: XeroRecordKind.INVOICE,
                PullCursor.Entity.CREDIT_NOTES: XeroRecordKind.CREDIT_NOTE,
                PullCursor.Entity.PAYMENTS: XeroRecordKind.PAYMENT}


def _seen_up_to(tenant_id) -> dict:
    """Per kind, the newest UpdatedDateUTC earlier pulls received: where this run's reading starts."""
    return {CURSOR_KINDS[entity]: watermark for entity, watermark in PullCursor.objects.filter(
        tenant_id=tenant_id, entity__in=list(CURSOR_KINDS), watermark__isnull=False).values_list(
        "entity", "watermark")}
