"""The processes the compose file starts — gunicorn, a Celery worker, beat — run for real against
PostgreSQL, Redis and the emulator: an edit made in the admin reaches Xero through them, untouched by
the test."""

import re
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import redis
import requests
import yaml
from django.conf import settings
from django.db import connection

from ecommerce import services
from tests.support import REPO_ROOT
from xero_sync.services import configuration

# The site's processes use the Celery app as configured (no key prefix to set), so they get a Redis database
# of their own, chosen among these only when it is empty: no stale message from other tests is consumed, and
# afterwards only what the test created is deleted. Never a flush of a database others may be using.
SMOKE_REDIS_DBS = range(15, 7, -1)


def an_empty_redis_database() -> str:
    for number in SMOKE_REDIS_DBS:
        url = re.sub(r"/\d*$", f"/{number}", settings.REDIS_URL)
        if redis.Redis.from_url(url).dbsize() == 0:
            return url
    pytest.fail(f"no empty Redis database among {list(SMOKE_REDIS_DBS)} for the smoke test's broker")


def delete_keys_created(url: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(count=1000))
    if keys:
        client.delete(*keys)


def compose_commands(port: int, schedule: str) -> dict[str, list[str]]:
    """The web, worker and beat commands exactly as docker-compose.yml gives them, run from this venv."""
    services_ = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    commands = {}
    for name in ("web", "worker", "beat"):
        command = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}").replace("/app/var/celerybeat-schedule", schedule)
                   for part in services_[name]["command"]]
        commands[name] = [sys.executable, "-m", *command]
    return commands


def wait_for(check, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False  # not listening yet, or still starting up


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_admin_edit_reaches_xero_through_gunicorn_a_worker_and_beat(xero_connected, xero_site, tmp_path,
                                                                         django_user_model):
    # given a connected shop with a 10-second quiet period, a customer with a confirmed sale, and a staff login
    configuration.sync_settings_update(debounce_seconds=10, max_wait_seconds=20)
    contact = services.contact_create(first_name="Mere", last_name="Parata", email="mere@example.com")
    services.sale_create(contact=contact, confirm=True, lines=[
        {"description": "Beanie", "quantity": Decimal("1"), "unit_amount": Decimal("39.95"),
         "tax_rate": Decimal("15"), "tax_code": "GST"}])
    django_user_model.objects.create_superuser("ops", "ops@example.com", "smoke-test-pw")
    broker_url = an_empty_redis_database()
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": broker_url,
        "XERO_CLIENT_ID": settings.XERO_CLIENT_ID, "XERO_CLIENT_SECRET": settings.XERO_CLIENT_SECRET,
        "XERO_REDIRECT_URI": settings.XERO_REDIRECT_URI, "XERO_EMULATOR_URL": xero_site.base_url,
    }
    processes = {name: subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
                 for name, command in compose_commands(port, str(tmp_path / "beat-schedule")).items()}
    site = f"http://127.0.0.1:{port}"
    try:
        # when the processes are up, beat's tick pushes the waiting sale on its own
        wait_for(lambda: answers(f"{site}/healthz"), seconds=30, what="gunicorn /healthz")
        wait_for(lambda: any(c.get("EmailAddress") == "mere@example.com" for c in xero_site.contacts()),
                 seconds=60, what="the first push by worker + beat")
        # and staff change the customer's email in the admin, through gunicorn
        browser = requests.Session()
        browser.get(f"{site}/admin/login/", timeout=5)
        login = browser.post(f"{site}/admin/login/?next=/admin/", timeout=5, data={
            "username": "ops", "password": "smoke-test-pw", "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        assert login.url.rstrip("/").endswith("/admin"), "the admin login failed"
        change = f"{site}/admin/ecommerce/contact/{contact.pk}/change/"
        browser.get(change, timeout=5)
        fields = {name: getattr(contact, name) for name in (
            "first_name", "last_name", "company_name", "phone", "address_line1", "address_line2", "city", "region",
            "postcode", "country")}
        saved = browser.post(change, timeout=5, data={**fields, "email": "mere.parata@example.org", "_save": "Save",
                                                      "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        assert saved.ok and "was changed successfully" in saved.text
        # then Xero has the new email within the quiet period plus a tick or two
        wait_for(lambda: any(c.get("EmailAddress") == "mere.parata@example.org" for c in xero_site.contacts()),
                 seconds=60, what="the admin edit to reach Xero")
        assert sum(1 for c in xero_site.contacts() if c.get("ContactNumber") == f"WEB-C{contact.pk:06d}") == 1
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        delete_keys_created(broker_url)  # the database was empty before: every key in it is the test's
    for name, process in processes.items():
        assert process.returncode in (0, -15), f"{name} ended with {process.returncode}: " \
            f"{process.stderr.read().decode()[-2000:]}"
