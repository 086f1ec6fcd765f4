"""Sign-ins in progress (OAuthAttempt): whose they are, how long they last, and forgetting them.

A consent covering several organisations leaves its token (encrypted) and the organisation list on the
attempt until the user who started it chooses one. Nobody else sees that choice, and it does not wait
for ever: after PENDING_CHOICE_LIFETIME_SECONDS the token is revoked at Xero and the row, with its PKCE
verifier, deleted. No database transaction is open during the revocation call.
"""

import datetime
import logging

from django.utils import timezone

from .. import client
from ..crypto import TokenDecryptError, decrypt_token
from ..errors import XeroError, XeroUnavailable
from ..models import OAuthAttempt

logger = logging.getLogger(__name__)

# From Connect to choosing the organisation. An hour: the choice is made in the same sitting.
PENDING_CHOICE_LIFETIME_SECONDS = 60 * 60


def attempt_started_by(attempt: OAuthAttempt, user) -> bool:
    # An attempt started from the command line has no user: whoever is logged in may finish it.
    return attempt.started_by_id is None or user is None or attempt.started_by_id == user.pk


def attempt_expired(attempt: OAuthAttempt) -> bool:
    return attempt.started_at < timezone.now() - datetime.timedelta(seconds=PENDING_CHOICE_LIFETIME_SECONDS)


def attempt_pending_for(*, attempt_id: int, user) -> OAuthAttempt | None:
    """The attempt waiting for `user` to choose an organisation, or None: someone else's attempt, one
    already chosen, or one past its lifetime are all simply not there for them."""
    attempt = OAuthAttempt.objects.filter(
        pk=attempt_id, completed_connection__isnull=True, pending_token_ciphertext__isnull=False,
        started_at__gte=timezone.now() - datetime.timedelta(seconds=PENDING_CHOICE_LIFETIME_SECONDS),
    ).first()
    return attempt if attempt is not None and attempt_started_by(attempt, user) else None


def attempts_purge() -> int:
    """Forget sign-ins older than PENDING_CHOICE_LIFETIME_SECONDS: revoke any token still waiting for an
    organisation choice, then delete the rows with their PKCE verifiers. Returns how many were deleted.

    A revocation Xero did not answer keeps its row for the next purge; anything else is deleted."""
    cutoff = timezone.now() - datetime.timedelta(seconds=PENDING_CHOICE_LIFETIME_SECONDS)
    stale = list(OAuthAttempt.objects.filter(started_at__lt=cutoff).values_list("pk", "pending_token_ciphertext"))
    forget = []
    for attempt_id, ciphertext in stale:
        if ciphertext is None or _pending_token_revoke(attempt_id, ciphertext):
            forget.append(attempt_id)
    deleted, _ = OAuthAttempt.objects.filter(pk__in=forget).delete()
    if deleted:
        logger.info("xero sign-ins: %d expired attempts forgotten", deleted)
    return deleted


def _pending_token_revoke(attempt_id: int, ciphertext) -> bool:
    """Revoke an unchosen consent's token at Xero; False when Xero did not answer (try again later)."""
    try:
        client.revoke(refresh_token_value=decrypt_token(ciphertext)["refresh_token"])
    except TokenDecryptError as failure:
        logger.warning("xero sign-in %s expired; its token could not be read to revoke it: %s", attempt_id, failure)
    except XeroUnavailable as failure:
        logger.warning("xero sign-in %s expired; revoking its token failed, tried again later: %s",
                       attempt_id, failure)
        return False
    except XeroError as failure:
        logger.warning("xero sign-in %s expired; Xero refused revoking its token: %s", attempt_id, failure)
    return True
