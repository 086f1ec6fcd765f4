"""/healthz: what a load balancer and a monitor read; and the one-line logs."""

import datetime
import json
import logging

import pytest
from django.utils import timezone

from config.logs import JsonFormatter
from xero_sync.models import SyncRun
from xero_sync.services.connection import connection_current

pytestmark = pytest.mark.django_db


def test_healthy_when_database_and_broker_answer_and_xero_is_not_connected(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok",
                               "xero_last_sync_age_seconds": None, "xero_sync": "ok"}


def test_a_stale_sync_makes_it_unhealthy_and_a_fresh_one_healthy(client, xero_connected, settings):
    settings.HEALTH_MAX_SYNC_AGE_SECONDS = 3600
    connected = connection_current()
    type(connected).objects.filter(pk=connected.pk).update(connected_at=timezone.now() - datetime.timedelta(days=3))
    run = SyncRun.objects.create(tenant_id=connected.tenant_id, trigger="auto", status="done",
                                 started_at=timezone.now() - datetime.timedelta(hours=2),
                                 finished_at=timezone.now() - datetime.timedelta(hours=2))
    stale = client.get("/healthz")
    assert stale.status_code == 503
    assert stale.json()["xero_sync"] == "stale" and 7190 <= stale.json()["xero_last_sync_age_seconds"] <= 7300
    SyncRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    assert client.get("/healthz").status_code == 200


def test_an_unreachable_broker_is_reported(client, settings):
    from config.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503 and response.json()["broker"] == "unreachable"


def test_health_says_nothing_secret(client, xero_connected, settings):
    body = client.get("/healthz").content.decode()
    for secret in (settings.SECRET_KEY, settings.XERO_CLIENT_SECRET, str(xero_connected.tenant_id)):
        assert secret not in body


def test_json_logs_are_one_object_per_line():
    record = logging.LogRecord("xero_sync.push", logging.WARNING, __file__, 1,
                               "xero push %s %s (xero %s): %s", ("sale", 42, "0b2f", "Invoice # must be unique."),
                               None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["message"] == "xero push sale 42 (xero 0b2f): Invoice # must be unique."
    assert json.loads(line)["level"] == "WARNING"
