"""Xero's webhooks: verify, remember, enqueue, answer. Nothing else happens inside the request: Xero
wants 200 within 5 seconds, and work done here would be lost if the process died mid-way.

Reading the delivery (size cap, signature, JSON shape and depth, the connected organisation's events
only, their identity) is webhook_intake's: anything malformed is a 401 or 400 from there, never a 500.
A bad or missing signature gets 401 and nothing is stored; that is also how Xero's intent-to-receive check
tells a real endpoint from one that accepts anything (docs/xero-api.md section 10).
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import webhook_intake
from .models import WebhookDelivery
from .services.connection import connection_current

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def xero_webhook(request: HttpRequest) -> HttpResponse:
    if webhook_intake.body_too_large(request.headers.get("content-length")):
        return HttpResponse(status=400)
    connection = connection_current()
    try:
        delivery = webhook_intake.delivery_read(
            body=request.body, signature=request.headers.get("x-xero-signature", ""),
            key=settings.XERO_WEBHOOK_KEY, tenant_id=connection.tenant_id if connection else None)
    except RequestDataTooBig:  # no Content-Length, and more than Django reads
        return HttpResponse(status=400)
    except webhook_intake.Refused as refused:
        return HttpResponse(status=refused.status)
    if delivery.ignored:
        logger.info("xero webhook: %d events for another organisation ignored", delivery.ignored)
    if not delivery.events:
        return HttpResponse(status=200)  # intent to receive, or nothing for this organisation
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(fingerprint=delivery.fingerprint, events=delivery.events)
            from .tasks import pull_now

            transaction.on_commit(lambda: pull_now.delay(trigger="webhook"), robust=True)
    except IntegrityError:
        logger.info("xero webhook: a repeated delivery, ignored")
    return HttpResponse(status=200)
