"""Issue 16 items 7 and 8: what a webhook delivery must be before anything is stored. Every malformed
request is refused as 401 or 400 (never an exception the view would turn into a 500), fast; another
organisation's events are ignored; a re-delivery is recognised by its events, not its bytes; what is kept
is capped; old deliveries are pruned."""

import base64
import datetime
import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone

from xero_sync.models import WebhookDelivery
from xero_sync.webhook_intake import (
    KEEP_DAYS,
    MAX_BODY_BYTES,
    Malformed,
    Unauthenticated,
    body_too_large,
    deliveries_prune,
    delivery_read,
    signature_valid,
)

KEY = "cQ2lJ7mGk4sTb1Zr8yXv0wNh5pFe3dUa9oIiLqKcRjYtHgSbVnMzAxWuEoPl6=="
OURS = "bd40ca93-87c3-403d-b6f2-6ebfc455a814"
THEIRS = "0c4f1a52-2d5e-4b1e-9b7c-3f1e2d4c5b6a"
INVOICE = "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10"


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def event(tenant_id: str = OURS, resource_id: str = INVOICE, **extra) -> dict:
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}", "resourceId": resource_id,
            "eventDateUtc": "2026-12-01T04:05:06.789", "eventType": "UPDATE", "eventCategory": "INVOICE",
            "tenantId": tenant_id, "tenantType": "ORGANISATION", **extra}


def body_of(events, **extra) -> bytes:
    return json.dumps({"events": events, "firstEventSequence": 1, "lastEventSequence": len(events) if isinstance(
        events, list) else 1, "entropy": "YSXCMKAQBJOEPZDXOVYK", **extra}, separators=(",", ":")).encode()


def read(body: bytes, *, signature: str | None = None, tenant_id=OURS):
    return delivery_read(body=body, signature=sign(body) if signature is None else signature, key=KEY,
                         tenant_id=tenant_id)


# --- Item 7: malformed requests are refused, never an exception ----------------------------------------


@pytest.mark.parametrize("signature", ["é" * 44, "\u00ff" + sign(b"x")[1:], "☃", sign(body_of([event()])) + "é"])
def test_a_non_ascii_signature_is_refused_as_unsigned(signature):
    body = body_of([event()])
    assert signature_valid(body, signature, KEY) is False
    with pytest.raises(Unauthenticated):
        read(body, signature=signature)


@pytest.mark.parametrize("nesting", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="a bare deep list"),
    pytest.param(b'{"events":[' + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"]}", id="deep inside events"),
])
def test_deeply_nested_json_is_refused_fast(nesting):
    started = time.monotonic()
    with pytest.raises(Malformed, match="nested"):
        read(nesting)
    assert time.monotonic() - started < 0.5


def test_brackets_inside_strings_are_not_nesting():
    body = body_of([event(resourceUrl="https://api.xero.com/" + "[{" * 200)])
    assert len(read(body).events) == 1


@pytest.mark.parametrize("body", [
    pytest.param(b"not json", id="not json"),
    pytest.param(b"\xff\xfe\x00", id="not utf-8"),
    pytest.param(b'"events"', id="a string"),
    pytest.param(b"[]", id="a list"),
    pytest.param(b'{"events":"all of them"}', id="events a string"),
    pytest.param(b'{"events":{"0":{}}}', id="events an object"),
    pytest.param(b'{"events":[1,2]}', id="events of numbers"),
    pytest.param(b'{"events":[{"eventCategory":"INVOICE"}]}', id="an event missing its fields"),
    pytest.param(b'{"events":[{"a":1}]}' + b" " * 10, id="unknown fields only"),
    pytest.param(b'{"n":' + b"9" * 5000 + b"}", id="a number too long to parse"),
])
def test_signed_but_unreadable_deliveries_are_malformed(body):
    with pytest.raises(Malformed):
        read(body)


def test_an_event_with_a_non_string_or_huge_field_is_malformed():
    with pytest.raises(Malformed):
        read(body_of([event(resourceId=12345)]))
    with pytest.raises(Malformed):
        read(body_of([event(resourceUrl="x" * 10_000)]))


def test_a_body_over_the_cap_is_refused_before_its_signature_is_computed():
    huge = body_of([event()], padding="x" * MAX_BODY_BYTES)
    with pytest.raises(Malformed, match="bytes"):
        read(huge)
    assert body_too_large(str(MAX_BODY_BYTES + 1)) and body_too_large("nonsense")
    assert not body_too_large(str(MAX_BODY_BYTES)) and not body_too_large(None)


def test_too_many_events_are_refused():
    with pytest.raises(Malformed, match="events"):
        read(body_of([event(resource_id=f"00000000-0000-0000-0000-{n:012d}") for n in range(501)]))


def test_intent_to_receive_reads_as_no_events():
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ZWDMFCZIQPSAJTWJCTHV"}'
    assert read(body).events == []
    with pytest.raises(Unauthenticated):
        read(body, signature=sign(body, "wrong-key"))


# --- Item 8: tenant, identity, caps, pruning -------------------------------------------------------------


def test_another_organisations_events_are_ignored():
    delivery = read(body_of([event(tenant_id=THEIRS), event(tenant_id=OURS.upper())]))
    assert [e["tenantId"] for e in delivery.events] == [OURS.upper()]
    assert delivery.ignored == 1
    only_theirs = read(body_of([event(tenant_id=THEIRS)]))
    assert (only_theirs.events, only_theirs.ignored) == ([], 1)
    # and with no connection, no event is anyone's here
    assert read(body_of([event()]), tenant_id=None).events == []


def test_a_redelivery_is_recognised_however_it_is_serialised():
    first = body_of([event(), event(resource_id="2a6be2d1-0f0e-4d3c-8b7a-6f5e4d3c2b1a")])
    # the same events, reordered, with other keys' order, whitespace, sequence numbers and entropy
    again = json.dumps({"entropy": "QWERTYUIOPASDFGHJKLZ", "events": [
        dict(reversed(list(event(resource_id="2a6be2d1-0f0e-4d3c-8b7a-6f5e4d3c2b1a").items()))), event()],
        "firstEventSequence": 7, "lastEventSequence": 8}, indent=2).encode()
    assert first != again
    assert read(first).fingerprint == read(again).fingerprint
    # while another change to the same invoice is new
    later = body_of([event(eventDateUtc="2026-12-01T04:05:07.000")])
    assert read(later).fingerprint != read(body_of([event()])).fingerprint


def test_only_xeros_fields_are_kept():
    delivery = read(body_of([event(extra="x" * 400, nested={"deep": [1, 2, 3]},
                                   data={"Type": "ACCRECCREDIT", "Status": "AUTHORISED", "More": "x"})]))
    (kept,) = delivery.events
    assert set(kept) == {"resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId",
                         "tenantType", "data"}
    assert kept["data"] == {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"}


@pytest.mark.django_db
def test_old_deliveries_are_pruned():
    old = WebhookDelivery.objects.create(fingerprint="old", events=[event()])
    recent = WebhookDelivery.objects.create(fingerprint="recent", events=[event()])
    WebhookDelivery.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - datetime.timedelta(days=KEEP_DAYS, minutes=1))
    assert deliveries_prune() == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
