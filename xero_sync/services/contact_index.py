"""The organisation's contacts as Xero last told us (XeroContactIndex), and the both-sides conflict rule.

Built once per run and handed to the push and the pull. The push matches a new website contact against
the index (by our ContactNumber, then by email) and names it uniquely among active contacts without a
call; both ask it who wins when a contact changed on the website and in Xero since the last sync.

Its refresh reads Xero's contacts changed since a cursor. In a run that pulls, it reads under the pull's
cursor and keeps the rows for the pull to apply (the pull moves that cursor once they are applied); in a
push-only run it reads under a cursor of its own, page by page keeping nothing, so the pull's cursor
still has those changes to apply later and memory stays that of a page.
"""

import datetime
import enum
from collections import defaultdict

from django.db.models.functions import Lower
from django.utils import timezone

from ecommerce.models import Contact

from .. import mappers
from ..models import PullCursor, RecordKind, SyncConflict, SyncEvent, SyncRun, XeroContactIndex, XeroLink
from .cursors import ChangesReader
from .paging import id_chunks


class ContactConflictOutcome(enum.Enum):
    NO_CONFLICT = "none"  # Xero has not changed it since our last sync: the website's version goes
    WEBSITE_WINS = "website"  # changed on both sides, the website's change is the newer: it goes to Xero
    XERO_WINS = "xero"  # changed on both sides, Xero's change is the newer: the pull brings it in


class ContactIndex:
    def __init__(self, *, reader: ChangesReader, run: SyncRun | None, keeps_changes: bool):
        self.reader = reader
        self.tenant_id = reader.tenant_id
        self.gateway = reader.gateway
        self.run_record = run
        self._keeps_changes = keeps_changes
        self._changes: list[dict] | None = None  # None: not refreshed in this run yet
        # Contacts whose website version won a conflict in this run: their older Xero rows are ignored.
        self._website_won: set[str] = set()

    @classmethod
    def for_a_pulling_run(cls, *, reader: ChangesReader, run: SyncRun | None) -> "ContactIndex":
        return cls(reader=reader, run=run, keeps_changes=True)

    @classmethod
    def for_a_push_only_run(cls, *, reader: ChangesReader, run: SyncRun | None) -> "ContactIndex":
        return cls(reader=reader, run=run, keeps_changes=False)

    # --- Keeping it current ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read every contact changed in Xero since last time (one call when idle) into the index; once
        per run, later calls do nothing."""
        if self._changes is not None:
            return
        self._changes = []
        entity = PullCursor.Entity.CONTACTS if self._keeps_changes else PullCursor.Entity.CONTACT_INDEX
        for rows in self.reader.pages("get_contacts", "Contacts", entity, advance=not self._keeps_changes,
                                      include_archived="true"):
            self.add(rows)
            if self._keeps_changes:
                self._changes += rows

    def changes(self) -> list[dict]:
        """The contacts Xero changed since the pull's cursor, for the pull to apply (refreshing first)."""
        self.refresh()
        return self._changes

    def add(self, rows: list[dict]) -> None:
        """Into the index as Xero states them (a read, or the answer to our own write). One row per
        contact, the last stated winning: an answer naming one contact twice (Xero matched two of our
        elements to it) must not make the upsert touch a row twice, which PostgreSQL refuses."""
        rows = list({str(row["ContactID"]): row for row in rows if row.get("ContactID")}.values())
        entries = [XeroContactIndex(
            tenant_id=self.tenant_id, xero_id=row["ContactID"], name=(row.get("Name") or "")[:255],
            contact_number=(row.get("ContactNumber") or "")[:50], email=(row.get("EmailAddress") or "")[:255],
            status=row.get("ContactStatus") or "ACTIVE", is_customer=bool(row.get("IsCustomer")),
            updated_at=mappers.parse_xero_datetime(row.get("UpdatedDateUTC")) or timezone.now(),
        ) for row in rows]
        XeroContactIndex.objects.bulk_create(
            entries, update_conflicts=True, unique_fields=["tenant_id", "xero_id"],
            update_fields=["name", "contact_number", "email", "status", "is_customer", "updated_at"],
        )

    # --- Questions the push asks -------------------------------------------------------------------------

    def matches(self, contacts: list[Contact]) -> dict[int, str]:
        """The Xero contact each of these unlinked website contacts already is: by ContactNumber (ours,
        e.g. after a crash), then by active contact's email, never one another website contact is
        linked to, and never the same one twice."""
        numbers = {mappers.contact_number(contact.pk) for contact in contacts}
        emails = {contact.email.lower() for contact in contacts if contact.email}
        index = XeroContactIndex.objects.filter(tenant_id=self.tenant_id).annotate(lower_email=Lower("email"))
        by_number = {row.contact_number: row.xero_id for row in index.filter(contact_number__in=numbers)}
        by_email = {row.lower_email: row.xero_id for row in index.filter(lower_email__in=emails, status="ACTIVE")}
        taken = set(XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=RecordKind.CONTACT,
            xero_id__in=list(by_number.values()) + list(by_email.values()),
        ).values_list("xero_id", flat=True))
        found = {}
        for contact in contacts:
            xero_id = by_number.get(mappers.contact_number(contact.pk)) or by_email.get(contact.email.lower())
            if xero_id and xero_id not in taken:
                found[contact.pk] = xero_id
                taken.add(xero_id)
        return found

    def names_taken(self, names: set[str]) -> dict[str, set]:
        """Lower-cased name -> the active Xero contacts holding it, for these names."""
        taken = defaultdict(set)
        for row in XeroContactIndex.objects.filter(tenant_id=self.tenant_id, status="ACTIVE").annotate(
                lower_name=Lower("name")).filter(lower_name__in={name.lower() for name in names}):
            taken[row.lower_name].add(row.xero_id)
        return taken

    def xero_versions_if_changed(self, links: list[XeroLink]) -> dict[str, dict]:
        """Xero's version of each linked contact Xero changed since our last sync, by Xero id: one query of
        the index for all of them. A run that pulls has the changed rows at hand; a push-only run asks
        Xero for the contacts the index says changed (a call per URL's worth of ids)."""
        self.refresh()
        synced_at = {str(link.xero_id): link.xero_updated_at for link in links if link.xero_id and link.xero_updated_at}
        changed = {str(xero_id) for xero_id, updated in XeroContactIndex.objects.filter(
            tenant_id=self.tenant_id, xero_id__in=list(synced_at)).values_list("xero_id", "updated_at")
            if updated > synced_at[str(xero_id)]}
        if not changed:
            return {}
        if self._keeps_changes:
            return {str(row.get("ContactID")): row for row in self._changes if str(row.get("ContactID")) in changed}
        found = {}
        for chunk in id_chunks(sorted(changed)):
            for row in self.gateway.call("get_contacts", i_ds=chunk, include_archived="true").get("Contacts", []):
                found[str(row.get("ContactID"))] = row
        return found

    # --- The conflict rule -----------------------------------------------------------------------------

    def conflict_outcome(self, *, contact: Contact, link: XeroLink, xero_row: dict | None) -> ContactConflictOutcome:
        """Before the push overwrites a contact in Xero: if Xero changed it too since our last sync
        (`xero_row`, its version), the newer change is kept and the other logged."""
        xero_changed = mappers.parse_xero_datetime(xero_row.get("UpdatedDateUTC")) if xero_row else None
        if xero_changed is None or not link.xero_updated_at or xero_changed <= link.xero_updated_at:
            return ContactConflictOutcome.NO_CONFLICT
        return self.both_changed(contact=contact, link=link, xero_row=xero_row, xero_changed=xero_changed)

    def both_changed(self, *, contact: Contact, link: XeroLink, xero_row: dict,
                     xero_changed: datetime.datetime) -> ContactConflictOutcome:
        """Changed on both sides: the newer change wins; the sync log keeps the version overwritten."""
        website_wins = contact.updated_at >= xero_changed
        outcome = ContactConflictOutcome.WEBSITE_WINS if website_wins else ContactConflictOutcome.XERO_WINS
        overwritten = (mappers.contact_fields_from_xero(xero_row, our_xero_name=link.xero_name) if website_wins else
                       {name: getattr(contact, name) for name in mappers.contact_fields_from_xero({})})
        SyncConflict.objects.create(run=self.run_record, kind=RecordKind.CONTACT, local_id=contact.pk,
                                    kept=outcome.value, overwritten={key: str(value) for key, value in overwritten.items()})
        SyncEvent.objects.create(link=link, action="conflict", detail=(
            f"Changed on both sides; kept the {'website' if website_wins else 'Xero'} version (the newer)."))
        if website_wins:
            self._website_won.add(str(link.xero_id))
        return outcome

    def website_won(self, xero_id) -> bool:
        """The website's version of this contact won a conflict in this run: Xero's older row is not news."""
        return str(xero_id) in self._website_won
