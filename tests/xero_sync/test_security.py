"""Issue 16: who may finish a Xero sign-in, what reaches a log, a token key that cannot read the stored
token, and a broker that is down. Against the running emulator, as an attacker or a careless operator."""

import datetime
import io
import json
import logging
import logging.config
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.support import REPO_ROOT
from xero_sync.checks import xero_stored_token
from xero_sync.models import OAuthAttempt, SyncRun, XeroConnection
from xero_sync.services.attempts import PENDING_CHOICE_LIFETIME_SECONDS, attempts_purge
from xero_sync.services.connection import connection_access_token, connection_current
from xero_sync.services.sync import sync_run

from .helpers import connect, consent_at_xero

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.fixture
def manager(django_user_model):
    return django_user_model.objects.create_superuser("other-manager", "other@example.com", "pw")


# --- Item 2: a sign-in belongs to the user who started it ---------------------------------------------


def _pending_choice(admin_client, xero_site) -> str:
    """Connect with a consent covering two organisations; return the choice page's URL."""
    xero_site.add_organisation("Second Shop Ltd")
    response = admin_client.get(consent_at_xero(admin_client))
    assert response.status_code == 302 and "/xero/choose/" in response["Location"]
    return response["Location"]


def test_another_user_never_sees_someone_elses_organisation_choice(admin_client, client, manager, xero_site):
    choice = _pending_choice(admin_client, xero_site)
    client.force_login(manager)
    # the page, and a crafted POST, are simply not there for them
    page = client.get(choice)
    assert page.status_code == 404
    assert "Second Shop Ltd" not in page.content.decode() and "Demo Company" not in page.content.decode()
    assert client.post(choice, {"tenant_id": xero_site.default_tenant_id}).status_code == 404
    assert connection_current() is None
    # while the user who started it still chooses
    assert admin_client.post(choice, {"tenant_id": xero_site.default_tenant_id}).status_code == 302
    assert connection_current().tenant_name == "Demo Company (NZ)"


def test_another_users_callback_does_not_burn_the_sign_in(admin_client, client, manager, xero_site):
    callback = consent_at_xero(admin_client)
    client.force_login(manager)
    refused = client.get(callback, follow=True)
    assert "started by another user" in " ".join(messages_of(refused))
    assert xero_site.calls_to("POST", "/connect/token") == []
    # the user who started it is not locked out of their own sign-in
    finished = admin_client.get(callback, follow=True)
    assert "Connected to Demo Company (NZ)" in " ".join(messages_of(finished))
    assert connection_current().status == XeroConnection.Status.ACTIVE


def _age(attempt_id: int, seconds: float) -> None:
    OAuthAttempt.objects.filter(pk=attempt_id).update(
        started_at=timezone.now() - datetime.timedelta(seconds=seconds))


def test_a_pending_choice_expires(admin_client, xero_site):
    choice = _pending_choice(admin_client, xero_site)
    attempt = OAuthAttempt.objects.get()
    # three days later the choice is no longer there
    _age(attempt.pk, 3 * 24 * 3600)
    assert admin_client.get(choice).status_code == 404
    assert admin_client.post(choice, {"tenant_id": xero_site.default_tenant_id}).status_code == 404
    assert connection_current() is None


def test_expired_attempts_are_revoked_at_xero_and_forgotten(admin_client, xero_site):
    _pending_choice(admin_client, xero_site)
    pending = OAuthAttempt.objects.get()
    refresh_token = xero_site.calls_to("POST", "/connect/token")[0]["response_json"]["refresh_token"]
    # a younger attempt stays
    assert attempts_purge() == 0 and OAuthAttempt.objects.count() == 1
    _age(pending.pk, PENDING_CHOICE_LIFETIME_SECONDS + 1)
    # when the purge runs (any new Connect runs it)
    response = admin_client.post(reverse("xero_sync:connect"))
    assert response.status_code == 302
    # then the waiting token was revoked at Xero and the row, with its PKCE verifier, is gone
    (revocation,) = xero_site.calls_to("POST", "/connect/revocation")
    assert refresh_token in json.dumps(revocation["request_json"])
    assert not OAuthAttempt.objects.filter(pk=pending.pk).exists()
    assert OAuthAttempt.objects.count() == 1  # the new attempt


# --- Item 3: no secret reaches a log -----------------------------------------------------------------


def _logging_config(**environ: str) -> dict:
    """LOGGING exactly as config.settings builds it from this environment."""
    keep = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
    probe = "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.LOGGING))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                            env={**keep, "DJANGO_SETTINGS_MODULE": "config.settings", **environ})
    return json.loads(result.stdout)


@pytest.fixture
def logs_at(settings):
    """Install the site's logging as LOG_LEVEL=DEBUG and the given LOG_FORMAT build it, writing to a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    named = {name: logging.getLogger(name) for name in (
        "requests_oauthlib", "oauthlib", "urllib3", "xero_python", "django.server")}
    saved_named = {name: (lg.level, lg.handlers[:], lg.propagate) for name, lg in named.items()}

    def install(log_format: str) -> io.StringIO:
        buffer = io.StringIO()
        config = _logging_config(LOG_LEVEL="DEBUG", LOG_FORMAT=log_format)
        config["handlers"]["console"]["stream"] = buffer
        logging.config.dictConfig(config)
        return buffer

    yield install
    logging.config.dictConfig(settings.LOGGING)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, (level, handlers, propagate) in saved_named.items():
        named[name].setLevel(level)
        named[name].handlers[:] = handlers
        named[name].propagate = propagate


@pytest.mark.parametrize("log_format", ["line", "json"])
def test_no_secret_reaches_the_log_at_debug(admin_client, xero_site, logs_at, log_format, settings):
    output = logs_at(log_format)
    # a whole life: connect, a refresh, a call, the callback in runserver's access log, a disconnect
    callback = consent_at_xero(admin_client)
    admin_client.get(callback)
    current = connection_current()
    connection_access_token(current.pk, rejected=connection_access_token(current.pk))
    admin_client.post(reverse("xero_sync:chart_refresh"))
    logging.getLogger("django.server").info('"%s" %s %s', f"GET {callback} HTTP/1.1", "302", "0")
    admin_client.post(reverse("xero_sync:disconnect"))
    logged = output.getvalue()
    assert logging.getLogger().level == logging.DEBUG
    secrets = [settings.XERO_CLIENT_SECRET, callback.split("code=")[1].split("&")[0],
               callback.split("state=")[1].split("&")[0]]
    for call in xero_site.calls_to("POST", "/connect/token"):
        secrets += [call["response_json"]["access_token"], call["response_json"]["refresh_token"]]
        secrets += [value for key, value in call["request_json"].items() if key in ("code_verifier", "refresh_token")]
    assert len(secrets) >= 7
    leaked = [secret for secret in secrets if secret and secret in logged]
    assert not leaked, f"{len(leaked)} secrets in the {log_format} log"
    assert "/xero/callback/?" in logged and "code=" not in logged.split("/xero/callback/?")[1][:20]


def test_a_worker_logging_through_celerys_own_handlers_is_redacted_too():
    from celery.signals import after_setup_logger

    import config.celery  # noqa: F401  (connects the signal)

    buffer = io.StringIO()
    worker_logger = logging.getLogger("test.celery.worker")
    worker_logger.addHandler(logging.StreamHandler(buffer))
    worker_logger.propagate = False
    after_setup_logger.send(sender=None, logger=worker_logger, loglevel=logging.INFO, logfile=None, format="",
                            colorize=False)
    worker_logger.warning("token answer: %s", {"access_token": "AT-123", "refresh_token": "RT-456"})
    assert "AT-123" not in buffer.getvalue() and "RT-456" not in buffer.getvalue()
    assert "[redacted]" in buffer.getvalue()


# --- Item 12: a token the key cannot read is a configuration error ------------------------------------


@pytest.fixture
def keys(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.XERO_TOKEN_KEYS = [first]
    return first, second


def _resume_now(connection: XeroConnection) -> None:
    """The pause's minute has passed."""
    XeroConnection.objects.filter(pk=connection.pk).update(paused_until=timezone.now() - datetime.timedelta(seconds=1))


@pytest.mark.postgres
def test_a_wrong_token_key_pauses_the_sync_and_the_right_one_resumes_it(keys, xero_connected, admin_client, settings,
                                                                         caplog):
    settings.ADMINS = [("Ops", "ops@example.com")]
    right, wrong = keys
    # given a worker started with another key (a rotation that dropped the old one)
    settings.XERO_TOKEN_KEYS = [wrong]
    with caplog.at_level(logging.ERROR, logger="xero_sync"):
        run = sync_run(trigger=SyncRun.Trigger.MANUAL, force=True)
    # then the run ended (not "running"), said why, and the connection is kept
    assert run.status != SyncRun.Status.RUNNING and run.finished_at
    assert "XERO_TOKEN_KEY" in " ".join(run.errors)
    connection = XeroConnection.objects.get(pk=xero_connected.pk)
    assert connection.status == XeroConnection.Status.ACTIVE and connection.is_current
    assert connection.paused_until and connection.paused_until > timezone.now()
    assert not [m for m in mail.outbox if "reconnect" in m.subject.lower()]
    assert any("XERO_TOKEN_KEY" in record.getMessage() for record in caplog.records)
    # and every admin page says it is the key, not the connection; `check` names it
    page = admin_client.get("/admin/").content.decode()
    assert "Xero tokens cannot be read" in page and "Xero needs reconnecting" not in page
    assert "xero_sync.E010" in {problem.id for problem in xero_stored_token(None)}
    # and once the key is right again, the next run goes through on the same connection
    settings.XERO_TOKEN_KEYS = [right]
    _resume_now(connection)
    assert xero_stored_token(None) == []
    assert sync_run(trigger=SyncRun.Trigger.MANUAL, force=True).status == SyncRun.Status.DONE
    assert "Xero tokens cannot be read" not in admin_client.get("/admin/").content.decode()


@pytest.mark.postgres
def test_a_malformed_token_key_at_run_time_is_no_500_and_no_run_left_running(keys, xero_connected, admin_client,
                                                                               settings):
    settings.XERO_TOKEN_KEYS = ["not-a-fernet-key"]
    for url in ("/admin/", reverse("xero_sync:settings")):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "Xero tokens cannot be read" in response.content.decode()
    refresh = admin_client.post(reverse("xero_sync:chart_refresh"), follow=True)
    assert refresh.status_code == 200 and "XERO_TOKEN_KEY" in " ".join(messages_of(refresh))
    run = sync_run(trigger=SyncRun.Trigger.MANUAL, force=True)
    assert run.status != SyncRun.Status.RUNNING
    assert not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
    assert XeroConnection.objects.get(pk=xero_connected.pk).status == XeroConnection.Status.ACTIVE


def test_connecting_with_a_malformed_token_key_is_reported_not_a_500(admin_client, xero_site, settings):
    settings.XERO_TOKEN_KEYS = ["not-a-fernet-key"]
    response = admin_client.get(consent_at_xero(admin_client), follow=True)
    assert response.status_code == 200
    assert "XERO_TOKEN_KEY is not a valid Fernet key" in " ".join(messages_of(response))


# --- Item 13: the broker is down ---------------------------------------------------------------------


@pytest.fixture
def broker_down():
    """The Celery app pointed at a port nobody listens on, as when Redis is down."""
    from config.celery import app

    saved = app.conf.broker_url

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None  # the pools hold connections to the broker they were made for
        app.amqp._producer_pool = None

    point_at("redis://127.0.0.1:9/0")
    yield
    point_at(saved)


def test_sync_now_with_the_broker_down_says_the_sync_will_pick_it_up(admin_client, xero_site, broker_down):
    connect(admin_client)
    response = admin_client.post(reverse("xero_sync:sync_now"), follow=True)
    assert response.status_code == 200
    said = " ".join(messages_of(response))
    assert "picks the work up by itself" in said and "Sync started" not in said


def test_send_to_xero_now_with_the_broker_down_keeps_the_records_queued_and_says_so(
        admin_client, xero_connected, broker_down):
    from ecommerce.models import Sale
    from tests.ecommerce.factories import a_sale
    from xero_sync.models import OutboxEntry

    sale = a_sale()
    OutboxEntry.objects.all().delete()
    response = admin_client.post(reverse("admin:ecommerce_sale_changelist"), {
        "action": "send_to_xero_now", "_selected_action": [sale.pk], "index": "0"}, follow=True)
    assert response.status_code == 200
    said = " ".join(messages_of(response))
    assert "picks the work up by itself" in said and "in a moment" not in said
    assert OutboxEntry.objects.filter(kind="sale", local_id=sale.pk).exists()
    assert Sale.objects.filter(pk=sale.pk).exists()


def test_every_handler_a_request_error_reaches_masks_secrets():
    # given the site's logging as configured (Django's own loggers included)
    from config.logs import SecretRedactingFilter

    # when a request error is logged, every handler it can reach, up the logger tree, masks it first
    logger, reached = logging.getLogger("django.request"), []
    while logger is not None:
        reached += logger.handlers
        logger = logger.parent if logger.propagate else None
    assert reached
    unmasked = [handler for handler in reached if not type(handler).__module__.startswith("_pytest")  # the test's
                and not any(isinstance(f, SecretRedactingFilter) for f in handler.filters)]
    assert not unmasked, f"handlers that print or mail in clear: {unmasked}"


def test_a_500_on_the_callback_mails_admins_without_its_code_or_state(settings, rf):
    # given ADMINS to mail, DEBUG off, and a request to the callback carrying Xero's code and state
    settings.ADMINS = [("Ops", "ops@example.com")]
    request = rf.get("/xero/callback/", {"code": "CODE-SECRET-123", "state": "STATE-SECRET-456"})
    # when it fails as Django logs a 500
    try:
        raise RuntimeError("boom while completing /xero/callback/?code=CODE-SECRET-123&state=STATE-SECRET-456")
    except RuntimeError:
        logging.getLogger("django.request").error("Internal Server Error: %s", request.path, exc_info=True,
                                                  extra={"status_code": 500, "request": request})
    # then the admins get their mail, and neither secret is in it
    (message,) = mail.outbox
    text = message.subject + message.body + "".join(str(content) for content, _ in message.alternatives)
    assert "RuntimeError" in text
    assert "CODE-SECRET-123" not in text and "STATE-SECRET-456" not in text


def test_a_json_token_with_an_escaped_quote_is_masked_whole():
    from config.logs import redact

    masked = redact('{"refresh_token": "abc\\"def-SECRET", "other": "kept"}')
    assert "SECRET" not in masked and '"other": "kept"' in masked
