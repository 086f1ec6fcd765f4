"""Xero's webhooks: verify, remember, enqueue, answer. Nothing else happens inside the request: Xero
wants 200 within 5 seconds, and work done here would be lost if the process died mid-way.

Xero signs the raw body with the app's webhook key (HMAC-SHA256, base64, header x-xero-signature). A bad
or missing signature gets 401 and nothing is stored; that is also how Xero's intent-to-receive check
tells a real endpoint from one that accepts anything (docs/xero-api.md section 10).
"""

import base64
import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import WebhookDelivery

logger = logging.getLogger(__name__)


def signature_valid(body: bytes, signature: str) -> bool:
    key = settings.XERO_WEBHOOK_KEY
    if not key or not signature:
        return False
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


@csrf_exempt
@require_POST
def xero_webhook(request: HttpRequest) -> HttpResponse:
    body = request.body
    if not signature_valid(body, request.headers.get("x-xero-signature", "")):
        return HttpResponse(status=401)
    try:
        events = json.loads(body).get("events", [])
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if not events:
        return HttpResponse(status=200)  # intent to receive
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(fingerprint=hashlib.sha256(body).hexdigest(), events=events)
            from .tasks import pull_now

            transaction.on_commit(lambda: pull_now.delay(trigger="webhook"), robust=True)
    except IntegrityError:
        logger.info("xero webhook: a repeated delivery, ignored")
    return HttpResponse(status=200)
