"""The push's link bookkeeping: links read for a stage, and their changes written a batch at a time.

A batch's results go in two statements (an upsert of its links, an insert of their history events), not
three per record. Pending changes are flushed before any read of links, so no query sees stale state.
"""

from django.db import connection as database
from django.db import transaction

from ...models import RecordKind, SyncEvent, XeroLink

# What the push changes on a link; written for a whole batch in one statement.
LINK_FIELDS = ["xero_id", "xero_key", "xero_name", "payload_hash", "sent_hash", "state", "last_error", "error_by",
               "attempts", "in_flight_since", "xero_updated_at", "last_pushed_at"]


class LinkBook:
    def __init__(self, *, tenant_id):
        self.tenant_id = tenant_id
        self._unsaved_links: dict[int, XeroLink] = {}
        self._unsaved_events: list[tuple[XeroLink, str, str]] = []

    def read(self, kind: RecordKind, local_ids) -> dict[int, XeroLink]:
        """The links of these records, a new unsaved one for each record not linked yet."""
        self.flush()  # what this reads must include what this run has decided
        local_ids = set(local_ids)
        found = {link.local_id: link for link in XeroLink.objects.filter(
            tenant_id=self.tenant_id, kind=kind, local_id__in=local_ids)}
        return {local_id: found.get(local_id) or XeroLink(tenant_id=self.tenant_id, kind=kind, local_id=local_id)
                for local_id in local_ids}

    def changed(self, link: XeroLink) -> None:
        self._unsaved_links[id(link)] = link

    def event(self, link: XeroLink, action: str, detail: str) -> None:
        self._unsaved_events.append((link, action, detail))

    def flush(self) -> None:
        """Write the pending link changes (one upsert, new links get their ids back) and history events (one
        insert). Django's bulk_update builds a CASE per field and record, which costs more than it saves."""
        if not self._unsaved_links and not self._unsaved_events:
            return
        # One row per record, the last decision winning: PostgreSQL refuses an upsert that touches a row
        # twice ("ON CONFLICT DO UPDATE command cannot affect row a second time").
        links = list({(link.kind, link.local_id): link for link in self._unsaved_links.values()}.values())
        with transaction.atomic():
            if not database.features.can_return_rows_from_bulk_insert:
                for link in links:  # an SQLite older than 3.35 cannot return the ids of new rows
                    link.save()
            else:
                XeroLink.objects.bulk_create(links, update_conflicts=True, update_fields=LINK_FIELDS,
                                             unique_fields=["tenant_id", "kind", "local_id"])
            SyncEvent.objects.bulk_create(SyncEvent(link=link, action=action, detail=detail)
                                          for link, action, detail in self._unsaved_events)
        self._unsaved_links, self._unsaved_events = {}, []
