"""Pushing contacts: matched to a Xero contact they already are, named uniquely, checked for a newer
change in Xero, sent."""

import logging

from django.db.models import Exists, OuterRef

from ecommerce.models import Contact, Sale

from ... import mappers
from ...models import RecordKind, XeroLink
from ...selectors import contacts_for_xero, sales_for_xero
from ..contact_index import ContactConflictOutcome
from .context import PushContext
from .sender import XeroWrite

logger = logging.getLogger(__name__)

State = XeroLink.State
NAME_TAKEN = "The contact name"  # Xero's "The contact name X is already assigned to another contact."


def _may_succeed_later(contact: Contact, payload: dict, message: str) -> bool:
    """A number Xero holds already (a lost call made it) is found by it next run. A name Xero holds is
    worth another try only while the contact has a more distinct name to try (the next run's index
    knows the namesake); once its last-resort name is refused, trying again cannot help."""
    if NAME_TAKEN in message:
        return payload.get("Name") != mappers.xero_name_candidates(contact)[-1]
    return "The contact number" in message


# New contacts are created with PUT, which only ever creates: a POST without a ContactID would let Xero
# update a namesake instead, putting two website contacts on one Xero contact. Linked ones are updated
# by ContactID with POST.
CONTACT_CREATES = XeroWrite(kind=RecordKind.CONTACT, operation="create_contacts", sdk_body_name="contacts",
                            body_key="Contacts", id_key="ContactID", may_succeed_later=_may_succeed_later)
CONTACT_UPDATES = XeroWrite(kind=RecordKind.CONTACT, operation="update_or_create_contacts",
                            sdk_body_name="contacts", body_key="Contacts", id_key="ContactID",
                            may_succeed_later=_may_succeed_later)


def push_contacts(context: PushContext, contact_ids: set[int]) -> set[int]:
    """Push the contacts that go to Xero; returns the ids that got a Xero id in this run."""
    contacts = list(Contact.objects.filter(contacts_for_xero(context.tenant_id), pk__in=contact_ids))
    links = context.links.read(RecordKind.CONTACT, [contact.pk for contact in contacts])
    had_id = {contact.pk for contact in contacts if links[contact.pk].xero_id}
    index = context.contact_index
    if contacts:
        index.refresh()  # matching and naming need the index as Xero has it now
    unlinked = [contact for contact in contacts if not links[contact.pk].xero_id]
    for local_id, xero_id in (index.matches(unlinked) if unlinked else {}).items():
        links[local_id].xero_id = xero_id
        logger.info("xero contact %s matched existing Xero contact %s", local_id, xero_id)
    names = _xero_names(context, contacts, links)
    synced = [links[contact.pk] for contact in contacts if links[contact.pk].xero_id
              and links[contact.pk].state == State.SYNCED]
    changed_in_xero = index.xero_versions_if_changed(synced) if synced else {}  # may ask Xero for those
    items = []
    for contact in contacts:
        link = links[contact.pk]
        if link.xero_id and link.state == State.SYNCED:
            xero_row = changed_in_xero.get(str(link.xero_id))
            if index.conflict_outcome(contact=contact, link=link, xero_row=xero_row) \
                    is ContactConflictOutcome.XERO_WINS:
                continue  # changed in Xero more recently: the pull brings Xero's version in instead
        payload = mappers.contact_payload(contact, name=names[contact.pk], xero_id=link.xero_id)
        link.xero_name = names[contact.pk] if names[contact.pk] != contact.display_name else ""
        items.append(context.sender.item(contact, link, payload, mappers.contact_number(contact.pk)))
    # Into the index at once, from Xero's answer: a namesake later in this run must not take the name.
    context.sender.send(CONTACT_UPDATES, [item for item in items if item.link.xero_id], on_answer=index.add)
    context.sender.send(CONTACT_CREATES, [item for item in items if not item.link.xero_id], on_answer=index.add)
    return {item.record.pk for item in items if item.link.xero_id and item.record.pk not in had_id}


def _xero_names(context: PushContext, contacts: list[Contact], links: dict[int, XeroLink]) -> dict[int, str]:
    """Names unique among the organisation's active contacts: a second David Smith becomes
    'David Smith (email)', or 'David Smith (WEB-C000042)', never merged into the first."""
    candidates = {contact.pk: mappers.xero_name_candidates(contact) for contact in contacts}
    taken = context.contact_index.names_taken({name for names in candidates.values() for name in names})
    names, claimed = {}, set()
    for contact in sorted(contacts, key=lambda c: (links[c.pk].xero_id is None, c.pk)):
        own = links[contact.pk].xero_id
        free = [name for name in candidates[contact.pk]
                if not (taken[name.lower()] - {own}) and name.lower() not in claimed]
        # None free: the last resort goes, and Xero's refusal is shown on the contact.
        names[contact.pk] = free[0] if free else candidates[contact.pk][-1]
        claimed.add(names[contact.pk].lower())
    return names


def sales_waiting_for(context: PushContext, contact_ids: set[int], already: set[int]) -> list[Sale]:
    """Sales for Xero of contacts that just reached Xero and that were left waiting for them."""
    if not contact_ids:
        return []
    synced = XeroLink.objects.filter(tenant_id=context.tenant_id, kind=RecordKind.SALE,
                                     local_id=OuterRef("pk"), state=State.SYNCED)
    return list(Sale.objects.filter(sales_for_xero(), contact_id__in=contact_ids)
                .exclude(pk__in=already).exclude(Exists(synced)).prefetch_related("lines"))
