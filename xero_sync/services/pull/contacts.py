"""Pulling Xero's customer contacts into the website, and the weekly read of the whole customer list."""

import datetime

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from ecommerce.models import Contact

from ... import mappers
from ...models import OutboxEntry, PullCursor, RecordKind, SyncEvent, XeroLink, XeroRecordKind
from ..contact_index import ContactConflictOutcome
from ..paging import id_chunks, xero_pages
from .context import PullContext

CUSTOMER_RECONCILE_EVERY = datetime.timedelta(days=7)
State = XeroLink.State
CONTACT = XeroRecordKind.CONTACT


def apply_contacts(context: PullContext, rows: list[dict], *, customers_only: bool = True) -> dict[str, Contact]:
    """Bring Xero's customer contacts into the website; returns website contacts by Xero id."""
    links = {str(link.xero_id): link for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.CONTACT, xero_id__in=[r.get("ContactID") for r in rows])}
    found = {}
    for row in rows:
        xero_id = row.get("ContactID")
        link = links.get(str(xero_id))
        if link is None and customers_only and not row.get("IsCustomer"):
            continue  # only customers become website contacts; the rest stay in the index
        if context.failures.failed_in_this_run(CONTACT, xero_id):
            continue  # failed already in this run; reported once
        try:
            contact = _apply_contact(context, row, link)
        except (ValidationError, ValueError, KeyError, DatabaseError) as error:
            context.failures.fail(CONTACT, row.get("Name") or xero_id, error, xero_id=xero_id)
            continue
        if contact is not None:
            found[str(xero_id)] = contact
            context.failures.landed(CONTACT, xero_id)
    return found


@transaction.atomic
def _apply_contact(context: PullContext, row: dict, link: XeroLink | None) -> Contact | None:
    updated = mappers.parse_xero_datetime(row.get("UpdatedDateUTC"))
    if not row.get("ContactID") or updated is None:
        raise ValueError("the contact has no ContactID or UpdatedDateUTC")
    index = context.contact_index
    if link is None:
        link = _adopt_contact_link(context, row)
    elif link.xero_updated_at and updated <= link.xero_updated_at or index.website_won(link.xero_id):
        # Our own write coming back, or older than what we hold: nothing new.
        return Contact.objects.filter(pk=link.local_id).first()
    elif OutboxEntry.objects.filter(kind=RecordKind.CONTACT, local_id=link.local_id).exists():
        # Changed here too, and not pushed yet (a pull on its own, e.g. after a webhook): newer wins.
        contact = Contact.objects.filter(pk=link.local_id).first()
        if contact is not None and index.both_changed(contact=contact, link=link, xero_row=row, xero_changed=updated
                                                      ) is ContactConflictOutcome.WEBSITE_WINS:
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
    context.report.pulled[CONTACT] += 1
    return contact


def _adopt_contact_link(context: PullContext, row: dict) -> XeroLink:
    """A Xero customer we have no link for: ours by ContactNumber, an unlinked website contact with the
    same email, or a new website contact."""
    local_id = None
    number = row.get("ContactNumber") or ""
    prefix = mappers.CONTACT_NUMBER_PREFIX
    if number.startswith(prefix) and number[len(prefix):].isdigit():
        local_id = Contact.objects.filter(pk=int(number[len(prefix):])).values_list("pk", flat=True).first()
    email = (row.get("EmailAddress") or "").strip().lower()
    if local_id is None and email:
        linked = XeroLink.objects.filter(tenant_id=context.tenant_id, kind=RecordKind.CONTACT).values("local_id")
        local_id = Contact.objects.annotate(lower_email=Lower("email")).filter(lower_email=email).exclude(
            pk__in=linked).values_list("pk", flat=True).first()
    existing = XeroLink.objects.filter(tenant_id=context.tenant_id, kind=RecordKind.CONTACT, local_id=local_id
                                       ).first() if local_id else None
    if existing is not None:
        existing.xero_id = row["ContactID"]
        return existing
    return XeroLink(tenant_id=context.tenant_id, kind=RecordKind.CONTACT, local_id=local_id or 0,
                    xero_id=row["ContactID"], xero_key=number)


def reconcile_customers(context: PullContext) -> None:
    """Xero does not move UpdatedDateUTC when a contact becomes a customer, so If-Modified-Since misses
    it; once a week read the whole customer list (a call per 1,000 customers)."""
    cursor = context.reader.cursor(PullCursor.Entity.CUSTOMERS)
    if (cursor.reconciled_at and timezone.now() - cursor.reconciled_at < CUSTOMER_RECONCILE_EVERY
            and not context.reader.full):
        return
    for rows, _ in xero_pages(context.gateway, "get_contacts", "Contacts", where="IsCustomer==true",
                              include_archived="true"):
        context.contact_index.add(rows)
        apply_contacts(context, rows)
    cursor.reconciled_at = timezone.now()
    cursor.save(update_fields=["reconciled_at"])


def fetch_contacts(context: PullContext, xero_ids, *, customers_only: bool = False) -> dict[str, Contact]:
    """Fetch these contacts from Xero by id (a call per URL's worth), into the index and the website."""
    found = {}
    for chunk in id_chunks(xero_ids):
        rows = context.gateway.call("get_contacts", i_ds=chunk, include_archived="true").get("Contacts", [])
        context.contact_index.add(rows)
        found.update(apply_contacts(context, rows, customers_only=customers_only))
    return found


def contacts_by_xero_id(context: PullContext, xero_ids: set[str]) -> dict[str, Contact]:
    """Website contacts for these Xero contacts, fetching from Xero any we have never seen (a contact
    becomes a customer with its first invoice, which If-Modified-Since does not report)."""
    links = {str(link.xero_id): link.local_id for link in XeroLink.objects.filter(
        tenant_id=context.tenant_id, kind=RecordKind.CONTACT, xero_id__in=xero_ids)}
    by_id = Contact.objects.in_bulk(list(links.values()))
    contacts = {xero_id: by_id[local_id] for xero_id, local_id in links.items() if local_id in by_id}
    missing = {xero_id for xero_id in xero_ids - set(contacts)
               if not context.failures.failed_in_this_run(CONTACT, xero_id)}
    contacts.update(fetch_contacts(context, missing))
    return contacts
