"""Telling people what the sync did: the digest mailed to ADMINS (records Xero gave up on, daily-limit
pauses; one mail, not one per record, and no news twice), and the progress bar `xero_sync run` draws.

Records are given up on the way they are in the shop: a real push that Xero fails until the attempts run
out, against the live emulator.
"""

import datetime
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from tests.ecommerce.factories import a_contact, a_sale
from xero_sync import tasks
from xero_sync.models import OutboxEntry, RecordKind, SyncEvent, SyncRun, XeroLink
from xero_sync.services import paging
from xero_sync.services.notify import digest_send
from xero_sync.services.push import MAX_ATTEMPTS
from xero_sync.services.sync import sync_run

pytestmark = pytest.mark.django_db

ADMIN = ("Shop Ops", "ops@shop.example.com")


@pytest.fixture(autouse=True)
def admins(settings):
    settings.ADMINS = [ADMIN]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def line(unit_amount: str = "40.00") -> dict:
    return {"description": "Merino beanie", "quantity": Decimal("1"), "unit_amount": Decimal(unit_amount),
            "tax_code": "GST", "tax_rate": Decimal("15")}


def orders(count: int, *, first: int = 0):
    return [a_sale(contact=a_contact(first_name=f"Customer{n:03d}"), lines=[line()]) for n in range(first, first + count)]


def push() -> SyncRun:
    run = sync_run(trigger="manual", force=True, pull=False)
    assert run is not None
    return run


def given_up_by_xero(xero, sales) -> None:
    """Xero answers 503 to every attempt at these sales' invoices until the push gives up on them."""
    xero.inject_fault("503", method="PUT", path_contains="/Invoices", count=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        OutboxEntry.objects.filter(not_before__isnull=False).update(
            not_before=timezone.now() - datetime.timedelta(days=1))
        push()
    assert set(XeroLink.objects.filter(kind=RecordKind.SALE, local_id__in=[s.pk for s in sales])
               .values_list("state", flat=True)) == {XeroLink.State.DEAD}


def paused_by_the_daily_limit(xero) -> SyncRun:
    orders(1, first=900)
    xero.inject_fault("429", problem="day", retry_after=3600, path_contains="/Contacts")
    run = push()
    assert run.status == SyncRun.Status.PAUSED
    return run


def digest(capture) -> str | None:
    with capture(execute=True):
        return digest_send()


# --- The digest ---------------------------------------------------------------------------------------


def test_records_xero_gave_up_on_reach_admins_in_one_mail(xero_connected, xero_site,
                                                          django_capture_on_commit_callbacks):
    # given three sales Xero kept failing until the push gave up on them
    sales = orders(3)
    given_up_by_xero(xero_site, sales)
    assert mail.outbox == []  # nothing is mailed as it happens

    # when the digest runs
    subject = digest(django_capture_on_commit_callbacks)

    # then ADMINS get one mail naming each sale, why, and what to do
    assert subject == "Xero sync: 3 record(s) gave up"
    [message] = mail.outbox
    assert message.to == [ADMIN[1]]
    assert message.subject.endswith("Xero sync: 3 record(s) gave up")
    for sale in sales:
        assert f"- {sale.number}: Gave up after {MAX_ATTEMPTS} attempts:" in message.body
    assert message.body.count("503") >= 3
    assert "Send them again from the admin: Xero links, filter 'Gave up', action 'Send to Xero again'." in message.body


def test_a_daily_limit_pause_is_in_the_digest(xero_connected, xero_site, django_capture_on_commit_callbacks):
    paused_by_the_daily_limit(xero_site)
    subject = digest(django_capture_on_commit_callbacks)
    assert subject == "Xero sync: the daily call limit was reached"
    [message] = mail.outbox
    assert "- Xero's daily call limit stopped the sync 1 time(s); it resumes by itself." in message.body
    assert "gave up" not in message.body.lower()


def test_give_ups_and_a_pause_together_make_one_mail(xero_connected, xero_site, django_capture_on_commit_callbacks):
    sales = orders(2)
    given_up_by_xero(xero_site, sales)
    paused_by_the_daily_limit(xero_site)
    subject = digest(django_capture_on_commit_callbacks)
    assert subject == "Xero sync: 2 record(s) gave up and the daily call limit was reached"
    assert len(mail.outbox) == 1
    assert all(sale.number in mail.outbox[0].body for sale in sales)


def test_nothing_is_mailed_when_nothing_went_wrong(xero_connected, xero_site, django_capture_on_commit_callbacks):
    # given nothing at all, then a sync that went well
    assert digest(django_capture_on_commit_callbacks) is None
    orders(2)
    assert push().status == SyncRun.Status.DONE
    # then no digest is sent
    assert digest(django_capture_on_commit_callbacks) is None
    assert mail.outbox == []


def test_a_hundred_and_twenty_give_ups_are_still_one_mail(xero_connected, django_capture_on_commit_callbacks):
    # given 120 records given up on in one bad hour (their history written as the push writes it)
    links = XeroLink.objects.bulk_create([
        XeroLink(tenant_id=xero_connected.tenant_id, kind=RecordKind.CONTACT, local_id=n, state=XeroLink.State.DEAD,
                 xero_key=f"WEB-C{n:06d}", last_error="Gave up after 8 attempts: 503") for n in range(1, 121)])
    SyncEvent.objects.bulk_create([SyncEvent(link=link, action="dead", detail=link.last_error) for link in links])

    subject = digest(django_capture_on_commit_callbacks)

    assert subject == "Xero sync: 120 record(s) gave up"
    assert len(mail.outbox) == 1


def test_the_next_digest_does_not_repeat_old_news(xero_connected, xero_site, django_capture_on_commit_callbacks):
    # given a digest already told of two give-ups
    first = orders(2)
    given_up_by_xero(xero_site, first)
    assert digest(django_capture_on_commit_callbacks) == "Xero sync: 2 record(s) gave up"

    # when the digest runs again with nothing new
    # then it sends nothing
    assert digest(django_capture_on_commit_callbacks) is None
    assert len(mail.outbox) == 1

    # when one more record is given up on
    xero_site.clear_faults()
    later = orders(1, first=50)
    given_up_by_xero(xero_site, later)
    subject = digest(django_capture_on_commit_callbacks)

    # then the next digest tells only of that one
    assert subject == "Xero sync: 1 record(s) gave up"
    assert len(mail.outbox) == 2
    body = mail.outbox[1].body
    assert later[0].number in body
    assert all(sale.number not in body for sale in first)


def test_a_pause_that_ends_a_run_already_going_when_the_last_digest_ran_is_still_reported(
        xero_connected, django_capture_on_commit_callbacks):
    # given a sync run that started a few minutes ago and is still talking to Xero when the digest runs
    run = SyncRun.objects.create(tenant_id=xero_connected.tenant_id, trigger=SyncRun.Trigger.AUTO,
                                 started_at=timezone.now() - datetime.timedelta(minutes=5))
    assert digest(django_capture_on_commit_callbacks) is None

    # when that run then hits Xero's daily limit
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.PAUSED, finished_at=timezone.now(),
                                             errors=["Xero's daily limit was reached."])

    # then the next digest tells of it: a pause is news when it happens, not when its run began
    assert digest(django_capture_on_commit_callbacks) == "Xero sync: the daily call limit was reached"
    assert len(mail.outbox) == 1


def test_the_hourly_task_sends_the_digest(xero_connected, xero_site, django_capture_on_commit_callbacks):
    given_up_by_xero(xero_site, orders(1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.notify_digest() == "Xero sync: 1 record(s) gave up"
    assert len(mail.outbox) == 1


# --- Progress bars in `xero_sync run` ----------------------------------------------------------------------


def test_run_shows_a_progress_bar_with_counts_while_it_pushes(xero_connected, xero_site):
    # given 120 sales of 120 new customers waiting to be pushed (three batches of each kind)
    orders(120)
    out, err = StringIO(), StringIO()

    # when an operator runs the push from the command line
    call_command("xero_sync", "run", "--push-only", stdout=out, stderr=err)

    # then a bar was drawn for each kind, batch by batch, ending at the whole count with an ETA
    drawn = err.getvalue()
    frames = [frame.strip() for frame in drawn.replace("\n", "\r").split("\r") if frame.strip()]
    sales = [frame for frame in frames if frame.startswith("sales pushed")]
    contacts = [frame for frame in frames if frame.startswith("contacts pushed")]
    # the bar is drawn empty before the first batch (its clock starts there), then after each batch of 50
    assert [frame.split("]")[1].split()[0] for frame in sales] == ["0/120", "50/120", "100/120", "120/120"]
    assert contacts[-1].split("]")[1].split()[0] == "120/120"
    assert sales[-1].startswith("sales pushed       [" + "#" * 30 + "] 120/120  ETA ")
    assert "[" + "#" * 12 + "-" * 18 + "] 50/120" in sales[1]
    # and each bar ends its line; the summary goes to stdout
    assert drawn.endswith("\n")
    assert "pushed 120 contacts, 120 sales" in out.getvalue()
    assert len([i for i in xero_site.invoices() if i["Type"] == "ACCREC"]) == 120


def cafe_invoices_in_xero(xero, count: int) -> None:
    for n in range(count):
        xero.create_invoice(Contact={"Name": f"Cafe {n:03d}"}, LineItems=[{
            "Description": "Kawakawa tea", "Quantity": 1, "UnitAmount": "10.00", "AccountCode": "200",
            "TaxType": "OUTPUT2"}])


def test_a_full_pull_of_many_pages_shows_a_bar_with_the_total_and_an_eta(xero_connected, xero_site, monkeypatch):
    # Xero answers a paged read with its pagination (itemCount), so the total is known from the first page:
    # a pull of thousands shows how far it has got and how long is left, as the push does.
    monkeypatch.setattr(paging, "PAGE_SIZE", 50)
    cafe_invoices_in_xero(xero_site, 120)
    err = StringIO()

    call_command("xero_sync", "run", "--pull-only", "--full", stdout=StringIO(), stderr=err)

    frames = [frame.strip() for frame in err.getvalue().replace("\n", "\r").split("\r") if frame.strip()]
    invoices = [frame for frame in frames if frame.lower().startswith("invoices read")]
    assert invoices and "120/120" in invoices[-1] and "ETA" in invoices[-1], invoices


def test_the_rate_a_pull_shows_is_measured_from_when_it_began_reading(xero_connected, xero_site, monkeypatch):
    # The bar times each kind from its first update, which arrives only after the first page is read and
    # applied: the first frame then claims tens of millions of records a second.
    monkeypatch.setattr(paging, "PAGE_SIZE", 50)
    cafe_invoices_in_xero(xero_site, 60)
    err = StringIO()

    call_command("xero_sync", "run", "--pull-only", "--full", stdout=StringIO(), stderr=err)

    # every call to the emulator takes well over a microsecond: no honest rate reaches a million a second
    rates = [int(rate.replace(",", "")) for rate in re.findall(r"\(([\d,]+)/s\)", err.getvalue())]
    assert max(rates, default=0) < 1_000_000, rates


def test_a_token_key_pause_is_told_apart_from_xeros_daily_limit_in_the_digest(
        xero_connected, django_capture_on_commit_callbacks):
    from xero_sync.services.connection import TOKEN_KEY_PROBLEM

    # given a run a worker paused because its XERO_TOKEN_KEY could not read the stored token
    now = timezone.now()
    SyncRun.objects.create(tenant_id=xero_connected.tenant_id, trigger="auto", status=SyncRun.Status.PAUSED,
                           started_at=now, finished_at=now,
                           errors=[f"{TOKEN_KEY_PROBLEM}: InvalidToken Paused until {now:%Y-%m-%d %H:%M} UTC."])

    subject = digest(django_capture_on_commit_callbacks)

    # then the digest says so, and does not blame Xero's daily limit
    assert subject == "Xero sync: the token key cannot read the stored token"
    [message] = mail.outbox
    assert "XERO_TOKEN_KEY could not read the stored Xero token, which paused the sync 1 time(s)" in message.body
    assert "daily call limit" not in message.body
