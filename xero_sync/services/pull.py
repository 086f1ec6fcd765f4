"""Pulling what changed in Xero: customer contacts, every sales invoice, payments into pull accounts.

Each kind is read with If-Modified-Since from its cursor (the newest UpdatedDateUTC actually received,
to the second), oldest first, 1,000 to a page, and the cursor is saved after every page: an idle
pull costs one call per kind, and a crash mid-pull resumes where it stopped. What the pull writes is
not recorded in the outbox, so nothing it brings in is pushed back. A record Xero sends that we cannot
read fails alone, visibly, and the pull goes on.
"""

import datetime
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from ecommerce.models import Contact, Invoice, InvoiceLine, Payment, PaymentMethod, Sale

from .. import mappers
from ..models import (
    OutboxEntry,
    PaymentMethodConfig,
    PullCursor,
    PullRetry,
    RecordKind,
    SyncConflict,
    SyncEvent,
    SyncRun,
    XeroConnection,
    XeroContactIndex,
    XeroLink,
)
from ..ratelimit import PacedGateway
from .outbox import outbox_suppressed

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
IDS_PER_CALL = 40  # Xero's URLs give out at about 52 GUIDs
CUSTOMER_RECONCILE_EVERY = datetime.timedelta(days=7)
State = XeroLink.State


@dataclass
class PullReport:
    pulled: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class Pull:
    def __init__(self, *, connection: XeroConnection, gateway: PacedGateway, run: SyncRun | None = None,
                 full: bool = False, progress=None, keep_contact_rows: bool = True):
        self.connection = connection
        self.keep_contact_rows = keep_contact_rows
        self.progress = progress or (lambda what, done, total: None)
        self.tenant_id = connection.tenant_id
        self.gateway = gateway
        self.run_record = run
        self.full = full
        self.report = PullReport()
        self._contact_rows: list[dict] | None = None
        self.seen: dict[str, datetime.datetime] = {}
        # Records that failed in this run (reported once), and those left over from earlier runs.
        self.failed_ids: dict[str, dict[str, str]] = defaultdict(dict)
        self.retrying: dict[str, set[str]] = defaultdict(set)
        for entity, xero_id in PullRetry.objects.filter(tenant_id=self.tenant_id).values_list("entity", "xero_id"):
            self.retrying[entity].add(str(xero_id))
        # Contacts whose website version won a conflict in this run's push: their older Xero rows are ignored.
        self.website_won: set[str] = set()

    # --- Reading ---------------------------------------------------------------------------------------

    def _cursor(self, entity: str) -> PullCursor:
        cursor, _ = PullCursor.objects.get_or_create(tenant_id=self.tenant_id, entity=entity)
        return cursor

    def _pages(self, operation: str, body_key: str, entity: str, *, advance: bool = True, **params):
        """Yield pages of records changed since the cursor. With `advance`, the cursor moves past each page
        once the caller has handled it (a crash re-reads at most that page); without, the newest stamp
        seen is kept in self.seen[entity] for the caller to commit when it has applied everything."""
        cursor = self._cursor(entity)
        # Xero's If-Modified-Since is "at or after", to the second: from the watermark's own second, so a
        # record stamped in that second after our last read is not missed, and little else is read again.
        since = None if self.full or cursor.watermark is None else cursor.watermark.replace(microsecond=0)
        page = 1
        while True:
            kwargs = {"page": page, "page_size": PAGE_SIZE, "order": "UpdatedDateUTC ASC", **params}
            if since is not None:
                kwargs["if_modified_since"] = since
            if page == 1:
                self.progress(f"{entity} read", 0, None)
            answer = self.gateway.call(operation, **kwargs)
            rows = answer.get(body_key, [])
            yield rows
            total = (answer.get("pagination") or {}).get("itemCount")
            self.progress(f"{entity} read", (page - 1) * PAGE_SIZE + len(rows), total)
            stamps = [mappers.parse_xero_datetime(row["UpdatedDateUTC"]) for row in rows
                      if isinstance(row.get("UpdatedDateUTC"), str) and mappers.MS_DATE.fullmatch(row["UpdatedDateUTC"])]
            if stamps:
                self.seen[entity] = max(filter(None, [self.seen.get(entity), *stamps]))
                if advance:
                    self._advance(entity)
            if len(rows) < PAGE_SIZE:
                return
            page += 1

    def _advance(self, entity: str) -> None:
        newest = self.seen.get(entity)
        if newest is not None:
            PullCursor.objects.filter(tenant_id=self.tenant_id, entity=entity).exclude(
                watermark__gte=newest).update(watermark=newest)

    def read_contacts(self) -> list[dict]:
        """Every contact changed in Xero since last time (one call when idle), into the contact index.
        Done once per run; the push reads the index to match and name new contacts.

        In a run that pulls, the rows are kept for the pull to apply, and the cursor moves once they are
        applied (run()). In a push-only run they only feed the index, page by page under a cursor of the
        index's own, so the pull's cursor still has them to apply later and memory stays that of a page."""
        if self._contact_rows is None:
            self._contact_rows = []
            entity = "contacts" if self.keep_contact_rows else "contact-index"
            for rows in self._pages("get_contacts", "Contacts", entity, advance=not self.keep_contact_rows,
                                    include_archived="true"):
                self.index_contacts(rows)
                if self.keep_contact_rows:
                    self._contact_rows += rows
        return self._contact_rows

    def index_contacts(self, rows: list[dict]) -> None:
        entries = []
        for row in rows:
            if not row.get("ContactID"):
                continue
            entries.append(XeroContactIndex(
                tenant_id=self.tenant_id, xero_id=row["ContactID"], name=(row.get("Name") or "")[:255],
                contact_number=(row.get("ContactNumber") or "")[:50], email=(row.get("EmailAddress") or "")[:255],
                status=row.get("ContactStatus") or "ACTIVE", is_customer=bool(row.get("IsCustomer")),
                updated_at=mappers.parse_xero_datetime(row.get("UpdatedDateUTC")) or timezone.now(),
            ))
        XeroContactIndex.objects.bulk_create(
            entries, update_conflicts=True, unique_fields=["tenant_id", "xero_id"],
            update_fields=["name", "contact_number", "email", "status", "is_customer", "updated_at"],
        )

    # --- The pull stage --------------------------------------------------------------------------------

    def run(self) -> PullReport:
        with outbox_suppressed():
            self.apply_contacts(self.read_contacts())
            self._advance("contacts")
            self._reconcile_customers()
            self._retry_earlier_failures()
            self.pull_invoices()
            self.pull_payments()
        return self.report

    def _fail(self, kind: str, what: str, error: Exception | str, *, xero_id=None) -> None:
        """Report a record that could not be taken in, once per run, and keep it to fetch again next time."""
        if xero_id is not None:
            if str(xero_id) in self.failed_ids[kind]:
                return
            self.failed_ids[kind][str(xero_id)] = str(error)
            try:
                record_id = uuid.UUID(str(xero_id))
            except ValueError:
                record_id = None  # an id Xero should never send: nothing to fetch it again by
            if record_id:
                PullRetry.objects.update_or_create(tenant_id=self.tenant_id, entity=kind, xero_id=record_id,
                                                   defaults={"reason": str(error)[:2000]})
        self.report.failed[kind] += 1
        message = f"{kind} {what} from Xero: {error}"
        self.report.errors.append(message)
        logger.warning("xero pull %s", message)

    def _landed(self, kind: str, xero_id) -> None:
        if str(xero_id) in self.retrying[kind]:
            PullRetry.objects.filter(tenant_id=self.tenant_id, entity=kind, xero_id=xero_id).delete()
            self.retrying[kind].discard(str(xero_id))

    def _retry_earlier_failures(self) -> None:
        """Fetch again, by id, what earlier pulls could not take in (the cursor has moved past them)."""
        contacts = sorted(self.retrying["contact"] - set(self.failed_ids["contact"]))
        for start in range(0, len(contacts), IDS_PER_CALL):
            rows = self.gateway.call("get_contacts", i_ds=contacts[start:start + IDS_PER_CALL],
                                     include_archived="true").get("Contacts", [])
            self.index_contacts(rows)
            self.apply_contacts(rows, customers_only=False)
        invoices = sorted(self.retrying["invoice"] - set(self.failed_ids["invoice"]))
        for start in range(0, len(invoices), IDS_PER_CALL):
            # page=1: paged invoice reads carry the line items
            self._apply_invoices(self.gateway.call("get_invoices", i_ds=invoices[start:start + IDS_PER_CALL],
                                                   page=1).get("Invoices", []))
        pulling = self._pull_methods()
        for payment_id in sorted(self.retrying["payment"] - set(self.failed_ids["payment"])):
            self._apply_payments(self.gateway.call("get_payment", payment_id=payment_id).get("Payments", []),
                                 pulling)

    # --- Contacts --------------------------------------------------------------------------------------

    def apply_contacts(self, rows: list[dict], *, customers_only: bool = True) -> dict[str, Contact]:
        """Bring Xero's customer contacts into the website; returns website contacts by Xero id."""
        links = {str(link.xero_id): link for link in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.CONTACT, xero_id__in=[r.get("ContactID") for r in rows])}
        found = {}
        for row in rows:
            xero_id = row.get("ContactID")
            link = links.get(str(xero_id))
            if link is None and customers_only and not row.get("IsCustomer"):
                continue  # only customers become website contacts; the rest stay in the index
            if str(xero_id) in self.failed_ids["contact"]:
                continue  # failed already in this run; reported once
            try:
                contact = self._apply_contact(row, link)
            except (ValidationError, ValueError, KeyError, DatabaseError) as error:
                self._fail("contact", row.get("Name") or xero_id, _describe(error), xero_id=xero_id)
                continue
            if contact is not None:
                found[str(xero_id)] = contact
                self._landed("contact", xero_id)
        return found

    @transaction.atomic
    def _apply_contact(self, row: dict, link: XeroLink | None) -> Contact | None:
        updated = mappers.parse_xero_datetime(row.get("UpdatedDateUTC"))
        if not row.get("ContactID") or updated is None:
            raise ValueError("the contact has no ContactID or UpdatedDateUTC")
        if link is None:
            link = self._adopt_contact_link(row)
        elif link.xero_updated_at and updated <= link.xero_updated_at or str(link.xero_id) in self.website_won:
            # Our own write coming back, or older than what we hold: nothing new.
            return Contact.objects.filter(pk=link.local_id).first()
        elif OutboxEntry.objects.filter(kind=RecordKind.CONTACT, local_id=link.local_id).exists():
            # Changed here too, and not pushed yet (a pull on its own, e.g. after a webhook): newer wins.
            contact = Contact.objects.filter(pk=link.local_id).first()
            if contact is not None and self._resolve_conflict(contact=contact, link=link, row=row, xero_changed=updated):
                link.xero_updated_at = updated  # decided: the push sends the website's version over it
                link.save(update_fields=["xero_updated_at"])
                return contact
        fields = mappers.contact_fields_from_xero(row, our_xero_name=link.xero_name if link.pk else "")
        contact = Contact.objects.filter(pk=link.local_id).first() if link.local_id else None
        if contact is None:
            contact = Contact(**fields)
        else:
            for name, value in fields.items():
                setattr(contact, name, value)
        contact.full_clean()
        contact.save()
        link.local_id = contact.pk
        link.xero_updated_at = updated
        link.xero_status = row.get("ContactStatus") or "ACTIVE"
        link.last_pulled_at = timezone.now()
        if not link.pk:
            link.state = State.SYNCED
        link.save()
        SyncEvent.objects.create(link=link, action="pulled", detail=f"{row.get('Name')} ({link.xero_status})")
        self.report.pulled["contact"] += 1
        return contact

    def _adopt_contact_link(self, row: dict) -> XeroLink:
        """A Xero customer we have no link for: ours by ContactNumber, an unlinked website contact with the
        same email, or a new website contact."""
        local_id = None
        number = row.get("ContactNumber") or ""
        if number.startswith(mappers.CONTACT_NUMBER_PREFIX) and number[len(mappers.CONTACT_NUMBER_PREFIX):].isdigit():
            local_id = Contact.objects.filter(pk=int(number[len(mappers.CONTACT_NUMBER_PREFIX):])).values_list(
                "pk", flat=True).first()
        email = (row.get("EmailAddress") or "").strip().lower()
        if local_id is None and email:
            linked = XeroLink.objects.filter(tenant_id=self.tenant_id, kind=RecordKind.CONTACT).values("local_id")
            local_id = Contact.objects.annotate(lower_email=Lower("email")).filter(lower_email=email).exclude(
                pk__in=linked).values_list("pk", flat=True).first()
        existing = XeroLink.objects.filter(tenant_id=self.tenant_id, kind=RecordKind.CONTACT, local_id=local_id
                                           ).first() if local_id else None
        if existing is not None:
            existing.xero_id = row["ContactID"]
            return existing
        return XeroLink(tenant_id=self.tenant_id, kind=RecordKind.CONTACT, local_id=local_id or 0,
                        xero_id=row["ContactID"], xero_key=number)

    def _reconcile_customers(self) -> None:
        """Xero does not move UpdatedDateUTC when a contact becomes a customer, so If-Modified-Since misses
        it; once a week read the whole customer list (a call per 1,000 customers)."""
        cursor = self._cursor("customers")
        if cursor.reconciled_at and timezone.now() - cursor.reconciled_at < CUSTOMER_RECONCILE_EVERY and not self.full:
            return
        page = 1
        while True:
            rows = self.gateway.call("get_contacts", where="IsCustomer==true", page=page, page_size=PAGE_SIZE,
                                     include_archived="true").get("Contacts", [])
            self.index_contacts(rows)
            self.apply_contacts(rows)
            if len(rows) < PAGE_SIZE:
                break
            page += 1
        cursor.reconciled_at = timezone.now()
        cursor.save(update_fields=["reconciled_at"])

    def _contacts_by_xero_id(self, xero_ids: set[str]) -> dict[str, Contact]:
        """Website contacts for these Xero contacts, fetching from Xero any we have never seen (a contact
        becomes a customer with its first invoice, which If-Modified-Since does not report)."""
        links = {str(link.xero_id): link.local_id for link in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.CONTACT, xero_id__in=xero_ids)}
        contacts = {xero_id: contact for xero_id, contact in (
            (xero_id, Contact.objects.filter(pk=local_id).first()) for xero_id, local_id in links.items()) if contact}
        missing = sorted(xero_ids - set(contacts) - set(self.failed_ids["contact"]))
        for start in range(0, len(missing), IDS_PER_CALL):
            rows = self.gateway.call("get_contacts", i_ds=missing[start:start + IDS_PER_CALL],
                                     include_archived="true").get("Contacts", [])
            self.index_contacts(rows)
            contacts.update(self.apply_contacts(rows, customers_only=False))
        return contacts

    # --- Invoices --------------------------------------------------------------------------------------

    def pull_invoices(self) -> None:
        for rows in self._pages("get_invoices", "Invoices", "invoices", where='Type=="ACCREC"'):
            self._apply_invoices(rows)

    def _apply_invoices(self, rows: list[dict]) -> None:
        contact_ids = {(row.get("Contact") or {}).get("ContactID") for row in rows} - {None}
        contacts = self._contacts_by_xero_id(contact_ids)
        sale_links = {str(link.xero_id): link for link in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.SALE, xero_id__in=[row.get("InvoiceID") for row in rows])}
        for row in rows:
            if row.get("Type", "ACCREC") != "ACCREC":
                continue
            try:
                self._apply_invoice(row, contacts, sale_links.get(str(row.get("InvoiceID"))))
            except (ValidationError, ValueError, KeyError, ArithmeticError, DatabaseError) as error:
                self._fail("invoice", row.get("InvoiceNumber") or row.get("InvoiceID"), _describe(error),
                           xero_id=row.get("InvoiceID"))
            else:
                self._landed("invoice", row.get("InvoiceID"))

    @transaction.atomic
    def _apply_invoice(self, row: dict, contacts: dict[str, Contact], sale_link: XeroLink | None) -> None:
        fields, lines = mappers.invoice_fields_from_xero(row)
        contact_id = str((row.get("Contact") or {}).get("ContactID"))
        contact = contacts.get(contact_id)
        if contact is None:
            reason = self.failed_ids["contact"].get(contact_id, "Xero did not return it")
            raise ValueError(f"its contact could not be brought in ({reason}); it is tried again at the next pull")
        sale = Sale.objects.filter(pk=sale_link.local_id).first() if sale_link else (
            Sale.objects.filter(number=fields["number"]).first() if fields["number"] else None)
        invoice = Invoice.objects.filter(xero_id=row["InvoiceID"]).first() or Invoice(xero_id=row["InvoiceID"])
        if invoice.pk and invoice.updated_in_xero_at >= fields["updated_in_xero_at"]:
            return  # seen already (the If-Modified-Since overlap re-reads the newest records)
        for name, value in {**fields, "contact": contact, "sale": sale}.items():
            setattr(invoice, name, value)
        invoice.full_clean(exclude=["sale", "contact"])
        invoice.save()
        invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create([InvoiceLine(invoice=invoice, **line) for line in lines])
        if sale_link is not None:
            sale_link.xero_status = fields["status"]
            sale_link.last_pulled_at = timezone.now()
            sale_link.save(update_fields=["xero_status", "last_pulled_at"])
            SyncEvent.objects.create(link=sale_link, action="pulled",
                                     detail=f"Xero holds it {fields['status']}, {fields['amount_due']} due")
        self.report.pulled["invoice"] += 1

    # --- Payments --------------------------------------------------------------------------------------

    @staticmethod
    def _pull_methods() -> dict[str, int]:
        return dict(PaymentMethodConfig.objects.filter(direction=PaymentMethodConfig.Direction.PULL)
                    .exclude(xero_account_code="").values_list("xero_account_code", "payment_method_id"))

    def pull_payments(self) -> None:
        pulling = self._pull_methods()
        for rows in self._pages("get_payments", "Payments", "payments"):
            self._apply_payments(rows, pulling)

    def _apply_payments(self, rows: list[dict], pulling: dict[str, int]) -> None:
        ours = {str(xero_id) for xero_id in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.RECEIPT, xero_id__in=[row.get("PaymentID") for row in rows]
        ).values_list("xero_id", flat=True)}
        wanted = [
            row for row in rows
            if row.get("PaymentType", "ACCRECPAYMENT") == "ACCRECPAYMENT"
            and str(row.get("PaymentID")) not in ours  # pushed from a receipt: it is already counted
            and mappers.receipt_id_from_reference(row.get("Reference")) is None
            and (row.get("Account") or {}).get("Code") in pulling
        ]
        invoice_ids = {(row.get("Invoice") or {}).get("InvoiceID") for row in wanted} - {None}
        invoices = {str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=invoice_ids)}
        missing = sorted(invoice_ids - set(invoices))
        for start in range(0, len(missing), IDS_PER_CALL):
            self._apply_invoices(self.gateway.call("get_invoices", i_ds=missing[start:start + IDS_PER_CALL]).get(
                "Invoices", []))
        invoices.update({str(invoice.xero_id): invoice for invoice in Invoice.objects.filter(xero_id__in=missing)})
        methods = {method.pk: method for method in PaymentMethod.objects.filter(pk__in=pulling.values())}
        for row in wanted:
            try:
                self._apply_payment(row, invoices, methods[pulling[row["Account"]["Code"]]])
            except (ValidationError, ValueError, KeyError, ArithmeticError, DatabaseError) as error:
                self._fail("payment", row.get("Reference") or row.get("PaymentID"), _describe(error),
                           xero_id=row.get("PaymentID"))
            else:
                self._landed("payment", row.get("PaymentID"))

    @transaction.atomic
    def _apply_payment(self, row: dict, invoices: dict[str, Invoice], method: PaymentMethod) -> None:
        fields = mappers.payment_fields_from_xero(row)
        invoice = invoices.get(str((row.get("Invoice") or {}).get("InvoiceID")))
        if invoice is None:
            raise ValueError("it is not on a sales invoice Xero returned")
        payment = Payment.objects.filter(xero_id=row["PaymentID"]).first() or Payment(xero_id=row["PaymentID"])
        if payment.pk and payment.updated_in_xero_at >= fields["updated_in_xero_at"]:
            return
        for name, value in {**fields, "invoice": invoice, "sale": invoice.sale, "payment_method": method}.items():
            setattr(payment, name, value)
        payment.full_clean(exclude=["invoice", "sale", "payment_method"])
        payment.save()
        self.report.pulled["payment"] += 1

    # --- Conflicts (called by the push before it overwrites a contact) -----------------------------------

    def contact_conflict(self, *, contact: Contact, link: XeroLink) -> bool:
        """Called by the push before it overwrites a contact in Xero: if Xero changed it too since our last
        sync, keep the newer change and log the other. Returns True when the website's version goes."""
        row = self._xero_contact_row(link)
        xero_changed = mappers.parse_xero_datetime(row.get("UpdatedDateUTC")) if row else None
        if row is None or not link.xero_updated_at or xero_changed is None or xero_changed <= link.xero_updated_at:
            return True
        return self._resolve_conflict(contact=contact, link=link, row=row, xero_changed=xero_changed)

    def _xero_contact_row(self, link: XeroLink) -> dict | None:
        """Xero's version of a linked contact if Xero changed it since our last sync, else None. A run that
        pulls has the rows at hand; a push-only run keeps only the index, and fetches the one contact the
        index says changed."""
        rows = self.read_contacts()
        if self.keep_contact_rows:
            return next((row for row in rows if str(row.get("ContactID")) == str(link.xero_id)), None)
        changed = link.xero_updated_at and XeroContactIndex.objects.filter(
            tenant_id=self.tenant_id, xero_id=link.xero_id, updated_at__gt=link.xero_updated_at).exists()
        if not changed:
            return None
        found = self.gateway.call("get_contacts", i_ds=[str(link.xero_id)], include_archived="true").get("Contacts", [])
        return found[0] if found else None

    def _resolve_conflict(self, *, contact: Contact, link: XeroLink, row: dict,
                          xero_changed: datetime.datetime) -> bool:
        website_wins = contact.updated_at >= xero_changed
        overwritten = (mappers.contact_fields_from_xero(row, our_xero_name=link.xero_name) if website_wins else
                       {name: getattr(contact, name) for name in mappers.contact_fields_from_xero({})})
        SyncConflict.objects.create(run=self.run_record, kind=RecordKind.CONTACT, local_id=contact.pk,
                                    kept="website" if website_wins else "xero",
                                    overwritten={key: str(value) for key, value in overwritten.items()})
        SyncEvent.objects.create(link=link, action="conflict", detail=(
            f"Changed on both sides; kept the {'website' if website_wins else 'Xero'} version (the newer)."))
        if website_wins:
            self.website_won.add(str(link.xero_id))
        return website_wins


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in error.message_dict.items()) \
            if hasattr(error, "error_dict") else " ".join(error.messages)
    return str(error)
