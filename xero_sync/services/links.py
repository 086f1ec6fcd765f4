"""Questions and actions about individual records' sync state, for the admin and the command line."""

from django.db import transaction
from django.db.models import QuerySet

from ..models import XeroLink
from .outbox import outbox_record

PROBLEM_STATES = (XeroLink.State.ERROR, XeroLink.State.LOCKED, XeroLink.State.CONFLICT, XeroLink.State.DEAD)


def links_with_problems() -> QuerySet[XeroLink]:
    return XeroLink.objects.filter(state__in=PROBLEM_STATES).order_by("-last_pushed_at", "-id")


@transaction.atomic
def links_requeue(*, links: QuerySet[XeroLink]) -> int:
    """Send these records again at the next run: a fresh attempt count and an outbox row each."""
    requeued = 0
    for link in links.select_for_update():
        link.attempts = 0
        link.last_error = ""
        if link.state in PROBLEM_STATES:
            link.state = XeroLink.State.PENDING
        link.save(update_fields=["attempts", "last_error", "state"])
        outbox_record(link.kind, link.local_id)
        requeued += 1
    return requeued
