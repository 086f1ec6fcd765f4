"""Settings come from the environment, with defaults that run the embedded site with no services."""

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from config.celery import app as celery_app
from tests.support import REPO_ROOT

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    " 'broker': s.CELERY_BROKER_URL, 'currency': s.SHOP_CURRENCY, 'tz': s.TIME_ZONE, 'debug': s.DEBUG}))"
)


def settings_with(**environ: str) -> dict:
    """Import the settings in a fresh interpreter with only the given variables set."""
    keep = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={**keep, "DJANGO_SETTINGS_MODULE": "config.settings", **environ},
    )
    return json.loads(result.stdout)


def test_embedded_defaults_need_no_services():
    loaded = settings_with()
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["name"] == str(REPO_ROOT / "var" / "shop.sqlite3")
    assert loaded["broker"] == "filesystem://"
    assert (loaded["currency"], loaded["tz"]) == ("NZD", "Pacific/Auckland")


def test_debug_is_off_unless_asked_for():
    # a 500 page with DEBUG on shows the settings (the webhook key among them) and local variables
    assert settings_with()["debug"] is False
    assert settings_with(DEBUG="true")["debug"] is True


def test_only_the_embedded_run_turns_debug_on(monkeypatch):
    from config import embedded

    monkeypatch.delenv("DEBUG", raising=False)
    assert embedded.child_environment()["DEBUG"] == "true"
    monkeypatch.setenv("DEBUG", "false")
    assert embedded.child_environment()["DEBUG"] == "false"


def test_environment_switches_to_postgres_and_redis():
    loaded = settings_with(
        DATABASE_URL="postgres://shop:secret@db.internal:5432/shop", REDIS_URL="redis://cache:6379/1",
        SHOP_CURRENCY="aud", SHOP_TIME_ZONE="Australia/Sydney",
    )
    assert (loaded["engine"], loaded["name"]) == ("django.db.backends.postgresql", "shop")
    assert loaded["broker"] == "redis://cache:6379/1"
    assert (loaded["currency"], loaded["tz"]) == ("AUD", "Australia/Sydney")


def test_every_setting_read_from_the_environment_is_listed_in_env_example():
    source = (REPO_ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source))
    listed = {line.split("=", 1)[0].lstrip("# ").strip()
              for line in (REPO_ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert read, "the settings read no variables?"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def _round_trip_through_the_broker() -> str:
    queue_name = f"test-{uuid.uuid4().hex}"
    payload = {"hello": queue_name}
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            queue.put(payload)
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == payload
        finally:
            queue.close()
        return connection.transport.driver_type


def test_the_configured_broker_carries_messages():
    # whichever broker the environment chose (files under var/ by default, Redis with REDIS_URL)
    expected = "redis" if settings.REDIS_URL else "filesystem"
    assert _round_trip_through_the_broker() == expected


@pytest.mark.redis
def test_redis_is_the_broker_when_redis_url_is_set():
    assert celery_app.conf.broker_url == settings.REDIS_URL
    assert _round_trip_through_the_broker() == "redis"
