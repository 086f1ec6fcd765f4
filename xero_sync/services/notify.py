"""The digest to ADMINS: what went wrong with the sync since the last one, in one mail, not one per record.

(A connection that needs reconnecting is mailed at once, by services.connection: nothing syncs until
someone acts.)
"""

import datetime

from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from ..models import SyncEvent, SyncRun, SyncSettings, XeroLink
from ..selectors import is_token_key_pause
from ..wording import record_names
from .books_check import BOOKS_DIFFER
from .configuration import sync_settings


@transaction.atomic
def digest_send() -> str | None:
    """Mail ADMINS about records given up on and daily limits reached since the last digest; returns the
    subject, or None when there was nothing to tell."""
    current = SyncSettings.objects.select_for_update().get(pk=sync_settings().pk)
    now = timezone.now()
    since = current.last_digest_at or now - datetime.timedelta(hours=1)
    given_up = list(SyncEvent.objects.filter(action=XeroLink.State.DEAD, at__gt=since).select_related("link"))
    paused = list(SyncRun.objects.filter(status=SyncRun.Status.PAUSED, finished_at__gt=since))
    # noted once each by the daily books check (books_check_watch), so each is told once
    books = list(SyncEvent.objects.filter(action=BOOKS_DIFFER, at__gt=since).order_by("at")[:101])
    current.last_digest_at = now
    current.save(update_fields=["last_digest_at"])
    if not given_up and not paused and not books:
        return None
    parts = []
    key_paused = [run for run in paused if any(is_token_key_pause(error) for error in run.errors)]
    limit_paused = [run for run in paused if run not in key_paused]
    if given_up:
        parts.append(f"{len(given_up)} record(s) gave up")
    if limit_paused:
        parts.append("the daily call limit was reached")
    if key_paused:
        parts.append("the token key cannot read the stored token")
    if books:
        parts.append("the books differ from Xero's")
    subject = "Xero sync: " + " and ".join(parts)
    lines = [f"Since {timezone.localtime(since):%Y-%m-%d %H:%M %Z}:", ""]
    if limit_paused:
        lines += [f"- Xero's daily call limit stopped the sync {len(limit_paused)} time(s); it resumes by itself.", ""]
    if key_paused:
        lines += [f"- XERO_TOKEN_KEY could not read the stored Xero token, which paused the sync {len(key_paused)} "
                  "time(s): a configuration error. Check the key in every process (web, worker, beat); the "
                  "connection is kept and the sync resumes once the key is right.", ""]
    if books:
        lines += [f"- The books check found {len(books) if len(books) <= 100 else 'over 100'} new difference(s) "
                  "between the website and Xero (Xero settings, Books check):"]
        lines += [f"  - {event.detail}" for event in books[:100]]
        lines.append("")
    names = record_names([event.link for event in given_up[:100]])
    for event in given_up[:100]:
        lines.append(f"- {names[event.link.pk]}: {event.detail}")
    if given_up:
        lines += ["", "Send them again from the admin: Xero links, filter 'Gave up', action 'Send to Xero again'."]
    transaction.on_commit(lambda: mail_admins(subject, "\n".join(lines)), robust=True)
    return subject
