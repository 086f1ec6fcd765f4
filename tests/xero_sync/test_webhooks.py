"""Xero's webhooks at /xero/webhooks/: only signed deliveries count, they are answered at once with an empty
200 and a pull is enqueued; that pull brings the changed record in.

Signing is Xero's: base64(HMAC-SHA256(webhook key, raw body)) in the x-xero-signature header. Enqueueing is
observed by replacing the task's `delay` (no message reaches a broker); the enqueued task is then run the
way a worker would run it.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
from celery.exceptions import Retry

from ecommerce.models import Invoice
from xero_sync import tasks
from xero_sync.models import SyncRun, WebhookDelivery
from xero_sync.services.leases import lease_acquire
from xero_sync.services.sync import sync_lease_name, sync_run

pytestmark = pytest.mark.django_db

URL = "/xero/webhooks/"
KEY = "cQ2lJ7mGk4sTb1Zr8yXv0wNh5pFe3dUa9oIiLqKcRjYtHgSbVnMzAxWuEoPl6=="
INTENT_TO_RECEIVE = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ZWDMFCZIQPSAJTWJCTHV"}'


@pytest.fixture(autouse=True)
def webhook_key(settings):
    settings.XERO_WEBHOOK_KEY = KEY


@pytest.fixture
def enqueued(monkeypatch) -> list[dict]:
    """What the webhook asked a worker to do: the keyword arguments of each pull_now.delay()."""
    asked: list[dict] = []
    monkeypatch.setattr(tasks.pull_now, "delay", lambda **kwargs: asked.append(kwargs))
    return asked


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def invoice_event(tenant_id: str, invoice_id: str, *, sequence: int = 1, event_type: str = "CREATE") -> bytes:
    return json.dumps({
        "events": [{
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}",
            "resourceId": invoice_id,
            "eventDateUtc": "2026-12-01T04:05:06.789",
            "eventType": event_type,
            "eventCategory": "INVOICE",
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
        }],
        "firstEventSequence": sequence,
        "lastEventSequence": sequence,
        "entropy": "YSXCMKAQBJOEPZDXOVYK",
    }, separators=(",", ":")).encode()


def deliver(client, body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_X_XERO_SIGNATURE": signature}
    return client.post(URL, data=body, content_type="application/json", **headers)


SOME_EVENT = invoice_event("bd40ca93-87c3-403d-b6f2-6ebfc455a814", "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10")


# --- Refusing what Xero did not sign -----------------------------------------------------------------


@pytest.mark.parametrize("signature", [
    pytest.param(None, id="unsigned"),
    pytest.param("", id="empty signature"),
    pytest.param(sign(SOME_EVENT, "another-apps-key"), id="signed with another key"),
    pytest.param(sign(SOME_EVENT + b" "), id="signature of another body"),
    pytest.param(sign(SOME_EVENT)[:-4] + "AAA=", id="tampered signature"),
])
def test_a_delivery_xero_did_not_sign_gets_401_and_changes_nothing(client, enqueued, signature,
                                                                  django_capture_on_commit_callbacks):
    # when a delivery arrives without Xero's signature over its body
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(client, SOME_EVENT, signature)

    # then it is refused, nothing is stored and no work is asked for
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
    assert (callbacks, enqueued) == ([], [])
    assert not SyncRun.objects.exists()


def test_a_site_without_a_webhook_key_refuses_every_delivery(client, enqueued, settings):
    # given no webhook key configured
    settings.XERO_WEBHOOK_KEY = ""

    # when a delivery signed with an empty key arrives
    response = deliver(client, SOME_EVENT, sign(SOME_EVENT, ""))

    # then it is refused like any unsigned one
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
    assert enqueued == []


def test_intent_to_receive_is_answered_200_when_signed_and_401_otherwise(client, enqueued):
    # when Xero checks the endpoint several times, some deliveries badly signed
    answers = [deliver(client, INTENT_TO_RECEIVE, signature).status_code for signature in (
        sign(INTENT_TO_RECEIVE), None, sign(INTENT_TO_RECEIVE, "wrong-key"), sign(INTENT_TO_RECEIVE),
        sign(INTENT_TO_RECEIVE + b"\n"))]

    # then only the correctly signed ones get 200
    assert answers == [200, 401, 401, 200, 401]
    # and an empty event list is no work
    assert not WebhookDelivery.objects.exists()
    assert enqueued == []


def test_the_endpoint_only_takes_posts(client):
    assert client.get(URL).status_code == 405


# --- Taking what Xero signed -------------------------------------------------------------------------


def test_a_signed_event_is_answered_at_once_with_an_empty_200_stored_and_a_pull_enqueued(
        client, enqueued, xero_connected, xero_site, django_capture_on_commit_callbacks):
    # when Xero delivers a signed event for the connected organisation
    body = invoice_event(xero_site.default_tenant_id, "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10")
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, body, sign(body))
    took = time.monotonic() - started

    # then it gets an empty 200 well inside Xero's five seconds, without talking to Xero meanwhile
    assert (response.status_code, response.content) == (200, b"")
    assert not response.cookies
    assert took < 1, took
    assert xero_site.calls == []
    # and the delivery is stored, and one pull asked of a worker
    delivery = WebhookDelivery.objects.get()
    assert delivery.events == json.loads(body)["events"]
    assert enqueued == [{"trigger": "webhook"}]


def test_a_repeated_delivery_is_ignored(client, enqueued, xero_connected, xero_site,
                                       django_capture_on_commit_callbacks):
    # given a delivery already taken
    first = invoice_event(xero_site.default_tenant_id, "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, first, sign(first)).status_code == 200

    # when Xero delivers it again
    with django_capture_on_commit_callbacks(execute=True):
        again = deliver(client, first, sign(first))

    # then Xero is told all is well, and nothing more is stored or asked for
    assert again.status_code == 200
    assert WebhookDelivery.objects.count() == 1
    assert enqueued == [{"trigger": "webhook"}]

    # when the next events arrive
    following = invoice_event(xero_site.default_tenant_id, "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10",
                              sequence=2, event_type="UPDATE")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, following, sign(following)).status_code == 200

    # then they are new work
    assert WebhookDelivery.objects.count() == 2
    assert len(enqueued) == 2


def test_a_signed_event_leads_to_a_pull_that_brings_the_changed_invoice_in(
        client, enqueued, xero_connected, xero_site, django_capture_on_commit_callbacks):
    # given the website up to date with Xero
    sync_run(trigger="manual", force=True, push=False)
    # and the bookkeeper then typing an invoice into Xero, which Xero announces
    typed = xero_site.create_invoice(Contact={"Name": "Kauri Cafe Ltd"}, LineItems=[
        {"Description": "Catering platter", "Quantity": 3, "UnitAmount": "20.00", "AccountCode": "200",
         "TaxType": "OUTPUT2"}])
    body = invoice_event(xero_site.default_tenant_id, typed["InvoiceID"])
    assert not Invoice.objects.exists()

    # when the event is delivered and a worker runs the work it enqueued
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, body, sign(body)).status_code == 200
    [work] = enqueued
    xero_site.reset_calls()
    run_id = tasks.pull_now.apply(kwargs=work).get()

    # then a pull (and no push) brought the invoice onto the website, with its new customer
    run = SyncRun.objects.get(pk=run_id)
    assert (run.trigger, run.status, run.pushed) == (SyncRun.Trigger.WEBHOOK, SyncRun.Status.DONE, {})
    invoice = Invoice.objects.get(xero_id=typed["InvoiceID"])
    assert (invoice.number, invoice.status, invoice.total) == (typed["InvoiceNumber"], "AUTHORISED", typed["Total"])
    assert invoice.contact.company_name == "Kauri Cafe Ltd"
    assert {call["method"] for call in xero_site.calls} == {"GET"}


def test_a_webhook_pull_while_another_sync_is_running_is_retried_shortly(xero_connected, xero_site):
    # given another worker in the middle of a sync with this organisation
    assert lease_acquire(name=sync_lease_name(xero_connected), owner="another-worker", seconds=600)

    # when the webhook's pull runs
    with pytest.raises(Retry):
        tasks.pull_now(trigger="webhook")

    # then it did not talk to Xero, and will run again (that sync may have pulled before the change)
    assert xero_site.calls == []
    assert not SyncRun.objects.exists()


# --- Issue 16 items 7 and 8, through the view --------------------------------------------------------


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply nested"),
    pytest.param(b'{"events":"all"}', id="events not a list"),
])
def test_a_malformed_signed_delivery_is_a_400_and_stores_nothing(client, enqueued, body):
    assert deliver(client, body, sign(body)).status_code == 400
    assert not WebhookDelivery.objects.exists() and enqueued == []


def test_a_non_ascii_signature_is_a_401(client, enqueued):
    assert deliver(client, SOME_EVENT, "\u00e9" * 44).status_code == 401
    assert not WebhookDelivery.objects.exists() and enqueued == []


def test_a_body_over_the_cap_is_a_400_and_stores_nothing(client, enqueued, xero_connected, xero_site):
    # a megabyte: under Django's own 2.5 MB limit, far over any delivery Xero sends
    event = json.loads(invoice_event(xero_site.default_tenant_id, "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10"))
    body = json.dumps({**event, "padding": "x" * 1_000_000}).encode()
    assert deliver(client, body, sign(body)).status_code == 400
    assert not WebhookDelivery.objects.exists() and enqueued == []


def test_another_organisations_events_are_not_stored_nor_pulled(client, enqueued, xero_connected,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, SOME_EVENT, sign(SOME_EVENT)).status_code == 200
    assert not WebhookDelivery.objects.exists() and enqueued == []


def test_a_reserialised_redelivery_is_ignored(client, enqueued, xero_connected, xero_site,
                                              django_capture_on_commit_callbacks):
    first = invoice_event(xero_site.default_tenant_id, "1f5ad9a2-3bd5-4cf1-8c9d-8d1f3c7b4e10")
    again = json.dumps(json.loads(first), indent=2).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, first, sign(first)).status_code == 200
        assert deliver(client, again, sign(again)).status_code == 200
    assert WebhookDelivery.objects.count() == 1 and len(enqueued) == 1
