"""Settings come from the environment, with defaults that run the embedded site with no services."""

import json
import logging
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
    assert loaded["broker"] == "filesystem://localhost/"
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


def variables_read() -> set[str]:
    """Every variable config/ reads: through the env reader (settings, production) or os.environ (the
    embedded runner)."""
    source = "\n".join(path.read_text() for path in (REPO_ROOT / "config").glob("*.py"))
    through_env = re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z_]+)"', source)
    through_os = re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z_]+)"', source)
    return set(through_env) | set(through_os)


def test_every_variable_read_is_in_env_example_and_the_readmes_table():
    read = variables_read()
    listed = {line.split("=", 1)[0].lstrip("# ").strip()
              for line in (REPO_ROOT / ".env.example").read_text().splitlines() if "=" in line}
    readme = (REPO_ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    named = set(re.findall(r"`([A-Z_]+\*?)`", table))

    def in_table(name: str) -> bool:
        return name in named or any(entry.endswith("*") and name.startswith(entry[:-1]) for entry in named)

    assert {"WEB_ADDRESS", "XERO_EMULATOR_PORT", "STATIC_ROOT", "SHOP_TIME_ZONE"} <= read
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
    assert not [name for name in read if not in_table(name)], "missing from the README's tables"


@pytest.mark.django_db
def test_every_key_healthz_answers_is_in_the_readme(client):
    keys = client.get("/healthz").json().keys()
    health = next(part for part in (REPO_ROOT / "README.md").read_text().split("\n\n") if "**Health**" in part)

    assert [key for key in keys if f'"{key}"' not in health and f"`{key}`" not in health] == []


def test_log_lines_name_the_shops_time_zone():
    from config.logs import JsonFormatter, ZonedFormatter

    # 2026-12-01 21:11:00 UTC is 10:11 the next morning in Auckland, in daylight saving time
    record = logging.LogRecord("xero_sync", logging.INFO, __file__, 1, "synced", None, None)
    record.created, record.msecs = 1796159460.0, 0
    line = ZonedFormatter("%(asctime)s %(levelname)s %(message)s", zone="Pacific/Auckland").format(record)
    entry = json.loads(JsonFormatter(zone="Pacific/Auckland").format(record))

    assert line == "2026-12-02 10:11:00,000 NZDT INFO synced"
    assert entry["time"] == "2026-12-02T10:11:00+1300"
    assert settings.LOGGING["formatters"]["line"]["zone"] == settings.TIME_ZONE


def console_handler() -> logging.Handler:
    import logging.config

    logging.config.dictConfig(settings.LOGGING)  # as the web, a worker and beat configure it
    return next(handler for handler in logging.getLogger().handlers if handler.get_name() == "console")


@pytest.mark.parametrize(("logger", "message"), [
    ("celery.beat", "Scheduler: Sending due task xero-sync-tick (xero_sync.sync_if_due)"),
    ("celery.worker.strategy", "Task xero_sync.sync_if_due[1f0e] received"),
    ("celery.app.trace", "Task xero_sync.sync_if_due[1f0e] succeeded in 0.01s: None"),
])
def test_the_beats_routine_tick_stays_out_of_the_console(logger, message):
    handler = console_handler()
    tick = logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)
    real_work = logging.LogRecord(logger, logging.INFO, __file__, 1, message.replace("sync_if_due", "sync_now")
                                  .replace("xero-sync-tick", "xero-sync-daily"), None, None)

    assert not handler.filter(tick) and tick.levelname == "DEBUG"
    assert handler.filter(real_work)


def test_admin_times_name_the_zone():
    import datetime

    from django.utils import formats, timezone

    moment = timezone.localtime(datetime.datetime(2026, 12, 1, 21, 11, tzinfo=datetime.UTC))
    assert formats.date_format(moment, "DATETIME_FORMAT") == "Dec. 2, 2026, 10:11 a.m. NZDT"


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
