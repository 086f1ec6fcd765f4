"""Reading a webhook delivery from Xero before anything is stored: pure checks on the raw request, fast,
and never an exception other than the two refusals below (so a malformed request is a 401 or 400, never
a 500 or an error mail).

- Size: Xero's deliveries are a few kilobytes; anything over MAX_BODY_BYTES is refused unread.
- Signature: base64(HMAC-SHA256(webhook key, raw body)) compared as bytes in constant time; a header that
  is not ASCII is simply wrong (hmac.compare_digest refuses non-ASCII str).
- Shape: a JSON object nested at most MAX_DEPTH deep (checked before parsing, so no RecursionError), with
  a list of at most MAX_EVENTS events, each an object carrying Xero's fields as short strings.
- Tenant: only events for the connected organisation are kept; another tenant's are ignored.
- Identity: a delivery's fingerprint is a hash of its events' identities (tenant, category, type, resource,
  date), so a re-delivery is recognised however Xero re-serialised it.

The view stores `Delivery.events` (trimmed to Xero's fields) under `Delivery.fingerprint`; deliveries
older than KEEP_DAYS are pruned by `deliveries_prune` (Xero retries a delivery for 24 hours).
"""

import base64
import datetime
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass

from django.utils import timezone

from .models import WebhookDelivery

MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 8
MAX_EVENTS = 500
MAX_FIELD_LENGTH = 500
KEEP_DAYS = 3
EVENT_FIELDS = ("resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId", "tenantType")
# CREDITNOTE events carry {"Type", "Status"} here; nothing else is kept.
EVENT_DATA_FIELDS = ("Type", "Status")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class Refused(Exception):
    status = 400


class Unauthenticated(Refused):
    """Not signed by Xero with our key: 401, which is also what Xero's intent-to-receive check expects."""

    status = 401


class Malformed(Refused):
    """Signed, but not a delivery we can read: 400."""


@dataclass(frozen=True)
class Delivery:
    events: list[dict]  # the connected organisation's events only, trimmed to Xero's fields
    fingerprint: str  # the same for every delivery of the same events, however serialised
    ignored: int  # events for other organisations (or the app itself)


def body_too_large(content_length: str | None) -> bool:
    """Whether the declared length is over the cap: checked before the body is read."""
    try:
        return int(content_length or 0) > MAX_BODY_BYTES
    except ValueError:
        return True


def signature_valid(body: bytes, signature: str, key: str) -> bool:
    if not key or not signature or not signature.isascii():
        return False
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.encode("ascii"))


def delivery_read(*, body: bytes, signature: str, key: str, tenant_id: str | uuid.UUID | None) -> Delivery:
    """The delivery in `body`, or Unauthenticated / Malformed. `tenant_id` is the connected organisation's
    (None when there is none: every event is then someone else's)."""
    if len(body) > MAX_BODY_BYTES:
        raise Malformed(f"the body is over {MAX_BODY_BYTES} bytes")
    if not signature_valid(body, signature, key):
        raise Unauthenticated("the signature does not match")
    if _nesting_depth(body) > MAX_DEPTH:
        raise Malformed(f"the JSON is nested over {MAX_DEPTH} deep")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise Malformed("the body is not JSON") from error
    if not isinstance(document, dict) or not isinstance(document.get("events", []), list):
        raise Malformed("the body has no list of events")
    events = document.get("events", [])
    if len(events) > MAX_EVENTS:
        raise Malformed(f"over {MAX_EVENTS} events")
    parsed = [_event(event) for event in events]
    ours = [event for event in parsed if tenant_id is not None and _same_uuid(event["tenantId"], tenant_id)]
    identities = sorted(json.dumps(event_identity(event)) for event in ours)
    fingerprint = hashlib.sha256("\n".join(identities).encode()).hexdigest()
    return Delivery(events=ours, fingerprint=fingerprint, ignored=len(parsed) - len(ours))


def event_identity(event: dict) -> list[str]:
    """What makes two events the same event (docs/xero-api.md section 10): a re-delivery repeats these."""
    return [event["tenantId"].lower(), event["eventCategory"], event["eventType"], event["resourceId"].lower(),
            event["eventDateUtc"]]


def deliveries_prune(*, keep_days: int = KEEP_DAYS) -> int:
    """Forget deliveries older than Xero's retry window (with a margin); returns how many."""
    cutoff = timezone.now() - datetime.timedelta(days=keep_days)
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def _nesting_depth(body: bytes) -> int:
    # Brackets inside strings do not nest; remove the strings, then count.
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub(b'""', body)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _event(event) -> dict:
    if not isinstance(event, dict):
        raise Malformed("an event is not an object")
    kept = {}
    for field in EVENT_FIELDS:
        value = event.get(field)
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD_LENGTH:
            raise Malformed(f"an event's {field} is missing or not a short string")
        kept[field] = value
    data = event.get("data")
    if isinstance(data, dict):
        kept["data"] = {key: data[key] for key in EVENT_DATA_FIELDS
                        if isinstance(data.get(key), str) and len(data[key]) <= MAX_FIELD_LENGTH}
    return kept


def _same_uuid(value: str, tenant_id: str | uuid.UUID) -> bool:
    try:
        return uuid.UUID(value) == uuid.UUID(str(tenant_id))
    except ValueError:
        return False
