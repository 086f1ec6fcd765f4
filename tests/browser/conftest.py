"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Never Playwright's own browser download: the machine's /usr/bin/chromium, headless, with the flags that
keep it off the network. Each test's screenshots land in var/screenshots/<test name>/<NN-step>.png.
"""

import re
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.support import REPO_ROOT, need

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
STAFF_USERNAME, STAFF_PASSWORD = "bookkeeper", "correct-horse-battery"


@pytest.fixture(autouse=True)
def _database_before_live_server(django_db_setup):
    """Set the test database up before the (session-wide) live server, so that it is torn down after the
    server has stopped: otherwise the server's last connection keeps PostgreSQL from dropping it."""


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_celery():
    """"Send to Xero now" and "Sync now" queue a Celery task; here it runs at once, inside the live
    server's request, so what the person sees next is the pushed result."""
    from config.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def browser(monkeypatch):
    need(CHROMIUM.exists(), f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # It also runs the test in another context (a greenlet), where Django opens a new database connection
    # and cannot see the one opened before. Close each on its own side, or the orphan keeps PostgreSQL
    # from dropping the test database at the end.
    connections.close_all()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()
            connections.close_all()


class Screenshots:
    """`shot("send-to-xero")` saves var/screenshots/<test>/<NN>-send-to-xero.png of the whole page."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: list[Path] = []
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def __call__(self, page, step: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshots(request) -> Screenshots:
    return Screenshots(SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name))


@pytest.fixture
def new_page(browser, live_server):
    """A fresh browser page whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, username: str, password: str) -> None:
    """Through the admin's own login form, as a person does."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")


@pytest.fixture
def staff_user(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser(STAFF_USERNAME, "books@shop.example.com", STAFF_PASSWORD)


@pytest.fixture
def browser_page(new_page, staff_user, screenshots):
    """A page logged in as a staff superuser through the real login form."""
    log_in(new_page, STAFF_USERNAME, STAFF_PASSWORD)
    assert "Site administration" in new_page.inner_text("body"), new_page.inner_text("body")[:500]
    screenshots(new_page, "logged-in")
    return new_page
