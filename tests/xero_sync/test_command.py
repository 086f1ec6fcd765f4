"""`manage.py xero_sync run|status` tell the truth, and `run` exits with a code a script can act on
(issue 15 items 1, 2, 3): 0 done, 1 failed, 3 paused, 4 busy (another worker), 5 not connected."""

import datetime
import subprocess
import sys
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.ecommerce.factories import a_contact, a_sale
from tests.support import REPO_ROOT, process_environment
from xero_sync.models import SyncRun, XeroConnection
from xero_sync.services.leases import lease_acquire
from xero_sync.services.sync import sync_lease_name

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


def run_command(*args: str) -> tuple[int, str]:
    """(exit code, what it printed) of `xero_sync ...`, as manage.py would exit."""
    out = StringIO()
    try:
        call_command("xero_sync", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}{error}"
    return 0, out.getvalue()


@pytest.mark.django_db
def test_a_run_that_goes_through_exits_0(xero_connected, xero_site):
    a_sale(contact=a_contact(first_name="Tui"), lines=[GST_LINE])
    code, said = run_command("run")
    assert code == 0, said
    assert "Done" in said


@pytest.mark.django_db
def test_a_run_the_daily_limit_stops_exits_paused_and_says_until_when(xero_connected, xero_site):
    a_sale(contact=a_contact(first_name="Tui"), lines=[GST_LINE])
    xero_site.inject_fault("429", problem="day", retry_after=3600, path_contains="/Contacts")

    code, said = run_command("run")

    assert code == 3, said
    until = XeroConnection.objects.get(pk=xero_connected.pk).paused_until
    assert f"Paused by Xero's call limit until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}" in said

    # and a run while paused makes no call, and exits paused too
    xero_site.reset_calls()
    code, said = run_command("run")
    assert code == 3 and "Paused by Xero's call limit until" in said
    assert xero_site.calls == []


@pytest.mark.django_db
def test_a_run_that_loses_the_race_says_another_worker_even_after_a_pause_that_is_over(xero_connected, xero_site):
    XeroConnection.objects.filter(pk=xero_connected.pk).update(
        paused_until=timezone.now() - datetime.timedelta(minutes=3), pause_reason="Xero's daily call limit.")
    assert lease_acquire(name=sync_lease_name(xero_connected), owner="another-worker", seconds=60)

    code, said = run_command("run")

    assert code == 4, said
    assert "Another worker is syncing" in said and "Paused" not in said


@pytest.mark.django_db
def test_a_failed_run_exits_1_and_shows_its_error(xero_connected, xero_site, monkeypatch):
    a_sale(contact=a_contact(first_name="Tui"), lines=[GST_LINE])
    from xero_sync.errors import XeroAuthorizationError

    def refused(*args, **kwargs):
        raise XeroAuthorizationError("Xero refused access (403)")

    monkeypatch.setattr("xero_sync.services.push.run.push_contacts", refused)
    code, said = run_command("run")
    assert code == 1, said
    assert "Xero refused access (403)" in said
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


@pytest.mark.django_db
def test_a_run_without_a_connection_exits_5():
    code, said = run_command("run")
    assert code == 5 and "Not connected" in said


def test_the_exit_codes_are_in_the_help():
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("xero_sync", "run", "--help", stdout=out)
    # argparse prints the help to sys.stdout; the epilog is the command's own text
    from xero_sync.management.commands.xero_sync import RUN_EPILOG

    for words in ("0 done", "1 failed", "3 paused", "4 busy", "5 not connected"):
        assert words in RUN_EPILOG


@pytest.mark.django_db
def test_status_shows_the_pause_and_when_it_ends_and_then_that_it_is_over(xero_connected):
    until = timezone.now() + datetime.timedelta(hours=1)
    XeroConnection.objects.filter(pk=xero_connected.pk).update(
        paused_until=until, pause_reason="Xero's daily call limit for this organisation is reached.")

    code, said = run_command("status")
    assert code == 0
    assert (f"Pause: Paused by Xero's call limit until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}: "
            "Xero's daily call limit for this "
            "organisation is reached.") in said

    XeroConnection.objects.filter(pk=xero_connected.pk).update(paused_until=until - datetime.timedelta(hours=2))
    code, said = run_command("status")
    assert "Pause: The pause (Xero's call limit) ended at" in said and "the next run resumes" in said


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_manage_py_exits_with_the_busy_code_and_documents_the_codes(xero_connected, xero_site):
    assert lease_acquire(name=sync_lease_name(xero_connected), owner="another-worker", seconds=60)
    env = process_environment(xero_site)

    busy = subprocess.run([sys.executable, "manage.py", "xero_sync", "run"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    helped = subprocess.run([sys.executable, "manage.py", "xero_sync", "run", "--help"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert busy.returncode == 4, busy.stderr
    assert "Another worker is syncing" in busy.stderr
    assert helped.returncode == 0
    assert "exit codes:" in helped.stdout and "4 busy" in " ".join(helped.stdout.split())
