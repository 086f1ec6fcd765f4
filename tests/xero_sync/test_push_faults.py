"""The push when Xero misbehaves: 429s (minute and day), pacing under the minute limit, timeouts after
Xero stored the write, transient 5xx with backoff and dead-lettering, Idempotency-Keys, two workers at
once, and a worker killed in the middle of a batch.

Every test ends by asking the emulator what Xero holds: each contact, invoice and payment exactly once.
"""

import datetime
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection as db
from django.utils import timezone

from ecommerce import selectors
from ecommerce.models import Receipt, Sale
from ecommerce.services import contact_update, receipt_record
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from tests.support import REPO_ROOT, process_environment
from xero_sync.mappers import contact_number, receipt_id_from_reference
from xero_sync.models import Lease, OutboxEntry, RecordKind, SyncRun, XeroConnection, XeroLink
from xero_sync.services.push import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, BATCH_SIZE, MAX_ATTEMPTS
from xero_sync.services.sync import sync_is_due, sync_run

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}
State = XeroLink.State
WRITE_KEYS = {"Contacts": "ContactNumber", "Invoices": "InvoiceNumber", "Payments": "Reference"}


# --- Helpers -------------------------------------------------------------------------------------------


def shop_with_sales(count: int, *, sales_per_contact: int = 1, receipts: bool = True) -> list[Sale]:
    """`count` confirmed sales (new contacts, one per `sales_per_contact` sales), each paid by card."""
    card = a_payment_method()
    sales = []
    for n in range(count):
        if n % sales_per_contact == 0:
            contact = a_contact(first_name=f"Customer{n:04d}")
        sale = a_sale(contact=contact, lines=[GST_LINE])
        if receipts:
            receipt_record(sale=sale, payment_method=card, amount=selectors.sale_totals(sale).total)
        sales.append(sale)
    return sales


def sync() -> SyncRun | None:
    return sync_run(trigger="manual", force=True)


def retries_due_now() -> None:
    """Skip the backoff: what the passing of time does to rows waiting for a retry."""
    OutboxEntry.objects.filter(not_before__isnull=False).update(not_before=timezone.now() - datetime.timedelta(1))


def sync_until_drained(max_runs: int = 4) -> list[SyncRun]:
    runs = []
    for _ in range(max_runs):
        retries_due_now()
        runs.append(sync())
        if not OutboxEntry.objects.exists():
            break
    return runs


def accounting_calls(xero, method: str | None = None, path: str | None = None) -> list[dict]:
    return [call for call in xero.calls_to(method, path) if call["path"].startswith("/api.xro/")]


def writes(xero) -> list[dict]:
    return [call for call in accounting_calls(xero) if call["method"] in ("POST", "PUT")]


def assert_xero_holds_each_once(xero, sales: list[Sale]) -> None:
    """Xero holds every contact, invoice and payment of these sales exactly once, and our links say so."""
    contacts = [c for c in xero.contacts() if (c.get("ContactNumber") or "").startswith("WEB-C")]
    contact_numbers = [c["ContactNumber"] for c in contacts]
    assert len(contact_numbers) == len(set(contact_numbers)), Counter(contact_numbers).most_common(3)
    assert set(contact_numbers) == {contact_number(sale.contact_id) for sale in sales}

    invoices = [i for i in xero.invoices() if i["Type"] == "ACCREC"]
    invoice_numbers = [i["InvoiceNumber"] for i in invoices]
    assert len(invoice_numbers) == len(set(invoice_numbers)), Counter(invoice_numbers).most_common(3)
    assert sorted(invoice_numbers) == sorted(sale.number for sale in sales)

    receipts = list(Receipt.objects.filter(sale__in=sales))
    payments = [p for p in xero.payments() if p["Status"] != "DELETED"]
    references = [p["Reference"] for p in payments]
    assert len(references) == len(set(references)), Counter(references).most_common(3)
    assert sorted(receipt_id_from_reference(ref) for ref in references) == sorted(r.pk for r in receipts)

    xero_ids = {
        RecordKind.CONTACT: {int(c["ContactNumber"].removeprefix("WEB-C")): c["ContactID"] for c in contacts},
        RecordKind.SALE: {sale.pk: next(i["InvoiceID"] for i in invoices if i["InvoiceNumber"] == sale.number)
                          for sale in sales},
        RecordKind.RECEIPT: {receipt_id_from_reference(p["Reference"]): p["PaymentID"] for p in payments},
    }
    for kind, expected in xero_ids.items():
        links = {link.local_id: link for link in XeroLink.objects.filter(kind=kind, local_id__in=expected)}
        assert {local_id: str(link.xero_id) for local_id, link in links.items()} == expected, kind
        assert {link.state for link in links.values()} == {State.SYNCED}, kind


def assert_nothing_sent_twice(xero) -> None:
    """No record's key appears in two write calls that Xero carried out (replays are not executions)."""
    for body_key, key_field in WRITE_KEYS.items():
        sent = [element.get(key_field) for call in writes(xero)
                if call["status"] == 200 and not call["replayed"] and call["fault"] is None
                for element in (call["request_json"] or {}).get(body_key, [])]
        assert len(sent) == len(set(sent)), f"{body_key} sent twice: {Counter(sent).most_common(3)}"


# --- 429: the minute limit and the day limit -----------------------------------------------------------


@pytest.mark.django_db
def test_a_minute_429_is_sat_out_and_the_same_batch_retried_after_retry_after(
        xero_connected, xero_site, settings):
    # given three paid sales, and Xero answering the first invoice call with a minute-limit 429
    sales = shop_with_sales(3)
    # (a 10 s pacing window instead of Xero's 60 only bounds this test's runtime if the wait overshoots)
    settings.XERO_RATE_WINDOW_SECONDS = 10
    xero_site.inject_fault("429", problem="minute", retry_after=2, method="PUT", path_contains="/Invoices")

    # when the push runs
    run = sync()

    # then the same invoice batch went again, no sooner than Retry-After said, and not much later either
    # (the pacer's docstring: "A 429 for the minute waits Retry-After and tries the same request again")
    limited, retried = accounting_calls(xero_site, "PUT", "/Invoices")
    assert limited["status"] == 429 and retried["status"] == 200
    assert retried["at"] - limited["at"] >= datetime.timedelta(seconds=2)
    assert retried["at"] - limited["at"] < datetime.timedelta(seconds=2 + 3), retried["at"] - limited["at"]
    assert retried["request_json"] == limited["request_json"]
    assert retried["headers"]["idempotency-key"] == limited["headers"]["idempotency-key"]
    # and nothing else was called while waiting
    between = [call for call in accounting_calls(xero_site) if limited["at"] < call["at"] < retried["at"]]
    assert between == []

    # and the run completed with everything in Xero once
    assert run.status == SyncRun.Status.DONE
    assert run.pushed == {"contact": 3, "sale": 3, "receipt": 3}
    assert_xero_holds_each_once(xero_site, sales)
    assert_nothing_sent_twice(xero_site)
    assert OutboxEntry.objects.count() == 0


@pytest.mark.django_db
def test_a_day_limit_429_pauses_the_organisation_until_xero_says_and_then_resumes(xero_connected, xero_site):
    # given three paid sales, and Xero's daily limit running out at the invoice call
    sales = shop_with_sales(3)
    xero_site.inject_fault("429", problem="day", retry_after=3600, method="PUT", path_contains="/Invoices")

    # when the push runs
    started = timezone.now()
    run = sync()

    # then the run is paused, and so is the organisation, for about the hour Xero asked
    assert run.status == SyncRun.Status.PAUSED
    assert any("daily" in error.lower() or "paused" in error.lower() for error in run.errors), run.errors
    connection = XeroConnection.objects.get(pk=xero_connected.pk)
    assert connection.paused_until is not None
    assert abs((connection.paused_until - started).total_seconds() - 3600) < 60
    # and the invoice call was not repeated within the run
    assert len(accounting_calls(xero_site, "PUT", "/Invoices")) == 1
    assert xero_site.invoices() == [] and xero_site.payments() == []

    # when anyone asks for a sync while paused (even "Sync now", even the beat tick)
    xero_site.reset_calls()
    assert sync() is None
    OutboxEntry.objects.update(recorded_at=timezone.now() - datetime.timedelta(hours=1))
    assert sync_run(trigger="auto") is None
    # then Xero hears nothing at all
    assert xero_site.calls == []
    assert XeroConnection.objects.get(pk=xero_connected.pk).paused_until == connection.paused_until

    # when the pause is lifted
    XeroConnection.objects.filter(pk=connection.pk).update(paused_until=None, pause_reason="")
    resumed = sync()

    # then the push finishes and Xero holds everything exactly once
    assert resumed.status == SyncRun.Status.DONE
    assert_xero_holds_each_once(xero_site, sales)
    assert_nothing_sent_twice(xero_site)
    assert OutboxEntry.objects.count() == 0


@pytest.mark.django_db
def test_a_day_limit_pause_ends_by_itself_when_its_time_has_passed(xero_connected, xero_site):
    # given a pause that Xero's day-limit 429 started
    sales = shop_with_sales(2)
    xero_site.inject_fault("429", problem="day", retry_after=3600, method="PUT", path_contains="/Contacts")
    assert sync().status == SyncRun.Status.PAUSED
    assert sync() is None

    # when its time has passed
    XeroConnection.objects.filter(pk=xero_connected.pk).update(
        paused_until=timezone.now() - datetime.timedelta(seconds=1))

    # then the next run goes through to the end
    assert sync().status == SyncRun.Status.DONE
    assert_xero_holds_each_once(xero_site, sales)


# --- Pacing under the minute limit ---------------------------------------------------------------------


@pytest.mark.django_db
def test_pacing_keeps_a_large_push_under_the_minute_limit_without_a_single_429(xero_connected, xero_site, settings):
    # given 300 paid sales of 100 new contacts: several batches of each kind
    sales = shop_with_sales(300, sales_per_contact=3)
    # and a minute limit of 10 calls per 2-second window, at Xero and in our settings
    window = datetime.timedelta(seconds=2)
    xero_site.set_limits(per_minute=10, window_seconds=2)
    settings.XERO_RATE_WINDOW_SECONDS = 2
    settings.XERO_RATE_PER_WINDOW = 10

    # when the push runs
    run = sync()

    # then Xero never had to refuse a call
    calls = accounting_calls(xero_site)
    assert [call for call in calls if call["status"] == 429] == []
    # and no call started before a slot in the window was free
    times = sorted(call["at"] for call in calls)
    for position, at in enumerate(times):
        in_window = [other for other in times[:position + 1] if other > at - window]
        assert len(in_window) <= 10, f"call {position} at {at}: {len(in_window)} calls in 2 s"
    # and the batches were what 300 sales need
    assert len(accounting_calls(xero_site, "PUT", "/Contacts")) == 2
    assert len(accounting_calls(xero_site, "PUT", "/Invoices")) == 300 // BATCH_SIZE
    assert len(accounting_calls(xero_site, "PUT", "/Payments")) == 300 // BATCH_SIZE
    assert times[-1] - times[0] >= window  # it really had to wait (15 calls > 10 per window)
    assert run.status == SyncRun.Status.DONE
    assert_xero_holds_each_once(xero_site, sales)
    assert_nothing_sent_twice(xero_site)


# --- A timeout after Xero stored the write -------------------------------------------------------------

UNKNOWN_OUTCOMES = [
    pytest.param(RecordKind.CONTACT, "PUT", "/Contacts", "drop", id="contacts-dropped"),
    pytest.param(RecordKind.SALE, "PUT", "/Invoices", "drop", id="invoices-dropped"),
    pytest.param(RecordKind.SALE, "PUT", "/Invoices", "hang", id="invoices-timed-out"),
    pytest.param(RecordKind.RECEIPT, "PUT", "/Payments", "drop", id="payments-dropped"),
    pytest.param(RecordKind.RECEIPT, "PUT", "/Payments", "hang", id="payments-timed-out"),
]


def held_by_xero(xero, kind: str) -> list[dict]:
    return {RecordKind.CONTACT: xero.contacts, RecordKind.SALE: xero.invoices, RecordKind.RECEIPT: xero.payments}[kind]()


@pytest.mark.parametrize("key_forgotten", [False, True], ids=["retried-promptly", "retried-after-7-minutes"])
@pytest.mark.parametrize(("kind", "method", "path", "fault"), UNKNOWN_OUTCOMES)
@pytest.mark.django_db
def test_a_write_xero_stored_but_never_answered_ends_in_xero_exactly_once(
        xero_connected, xero_site, settings, kind, method, path, fault, key_forgotten):
    # given three paid sales, and the first write of one kind stored by Xero but never answered
    sales = shop_with_sales(3)
    settings.XERO_HTTP_TIMEOUT = 1
    xero_site.inject_fault(fault, method=method, path_contains=path, after_write=True, seconds=2)

    # when the push runs
    run = sync()

    # then the run reports the failure of those three records
    assert run.failed.get(kind) == 3, run.failed
    links = XeroLink.objects.filter(kind=kind)
    assert links.count() == 3
    assert all(link.last_error for link in links), [link.last_error for link in links]
    assert {link.state for link in links} != {State.SYNCED}
    # and they wait for a retry, later
    waiting = OutboxEntry.objects.filter(kind=kind)
    assert waiting.exists() and all(entry.not_before > run.started_at for entry in waiting)
    # yet Xero did store them: the outcome was only unknown to us
    assert len(held_by_xero(xero_site, kind)) == 3

    # when the next runs come (the backoff skipped), promptly or once Xero has forgotten the write's
    # Idempotency-Key (it keeps them 6 minutes): then only looking the record up by its key can tell
    if key_forgotten:
        xero_site.clock.advance(7 * 60)
    runs = sync_until_drained()

    # then each record is in Xero exactly once, linked and synced
    assert not OutboxEntry.objects.exists(), [(e.kind, e.local_id, e.not_before) for e in OutboxEntry.objects.all()]
    assert all(later.status == SyncRun.Status.DONE for later in runs)
    assert_xero_holds_each_once(xero_site, sales)


# --- Transient 5xx: backoff on the rows, attempts on the link, dead-lettering --------------------------


@pytest.mark.django_db
def test_an_edit_whose_update_call_failed_is_sent_again_not_taken_as_landed(xero_connected, xero_site):
    # given a paid sale whose contact is in Xero
    (sale,) = shop_with_sales(1)
    sync()
    contact = sale.contact
    # when staff change the contact's phone and Xero fails that update call once
    contact_update(contact=contact, phone="021 555 0101")
    xero_site.inject_fault("503", method="POST", path_contains="/Contacts")
    first = sync()
    assert first.failed.get("contact") == 1
    # and the retry comes round
    retries_due_now()
    sync()

    # then Xero holds the new phone: the failed call was not mistaken for a landed one
    (in_xero,) = [c for c in xero_site.contacts() if c.get("ContactNumber") == contact_number(contact.pk)]
    assert "021 555 0101" in str(in_xero.get("Phones"))
    assert XeroLink.objects.get(kind=RecordKind.CONTACT, local_id=contact.pk).state == XeroLink.State.SYNCED


def backoff_bounds(attempts: int) -> tuple[float, float]:
    base = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)
    return base * 0.5, base * 1.5


@pytest.mark.parametrize("status", ["500", "503"])
@pytest.mark.django_db
def test_a_transient_error_on_a_batch_backs_off_with_jitter_and_counts_an_attempt(xero_connected, xero_site, status):
    # given five paid sales, and Xero failing the invoice batch once
    sales = shop_with_sales(5)
    xero_site.inject_fault(status, method="PUT", path_contains="/Invoices")

    # when the push runs
    run = sync()

    # then the contacts went, the invoices did not
    assert run.pushed == {"contact": 5}
    assert run.failed.get("sale") == 5
    assert xero_site.invoices() == []
    # and each sale counts one attempt, with the error shown
    links = XeroLink.objects.filter(kind=RecordKind.SALE)
    assert [link.attempts for link in links] == [1] * 5
    assert all(status in link.last_error for link in links), [link.last_error for link in links]
    # and its outbox rows wait a jittered backoff: within the first step's bounds, not all alike
    low, high = backoff_bounds(1)
    delays = [(entry.not_before - run.started_at).total_seconds()
              for entry in OutboxEntry.objects.filter(kind=RecordKind.SALE)]
    assert delays and all(low - 1 <= delay <= high + 1 for delay in delays), delays
    assert len({round(delay, 3) for delay in delays}) > 1, "no jitter"
    # and the receipts that never got their turn wait as well; the contacts' rows are gone
    assert all(entry.not_before for entry in OutboxEntry.objects.filter(kind=RecordKind.RECEIPT))
    assert not OutboxEntry.objects.filter(kind=RecordKind.CONTACT).exists()
    # and the beat tick does not start before the earliest retry is due
    earliest = min(OutboxEntry.objects.values_list("not_before", flat=True))
    assert not sync_is_due(now=earliest - datetime.timedelta(seconds=1))
    assert sync_is_due(now=earliest)

    # when the retry comes
    first_key = accounting_calls(xero_site, "PUT", "/Invoices")[0]["headers"]["idempotency-key"]
    runs = sync_until_drained()

    # then the same batch went with the same Idempotency-Key (Xero would replay it had it stored it)
    assert accounting_calls(xero_site, "PUT", "/Invoices")[1]["headers"]["idempotency-key"] == first_key
    # and everything is in Xero once, attempts cleared
    assert len(runs) == 1
    assert_xero_holds_each_once(xero_site, sales)
    assert [link.attempts for link in XeroLink.objects.filter(kind=RecordKind.SALE)] == [0] * 5


@pytest.mark.django_db
def test_a_record_that_keeps_failing_is_dead_lettered_after_max_attempts(xero_connected, xero_site):
    # given two sales, and Xero failing every invoice call for as long as we keep trying
    shop_with_sales(2, receipts=False)
    xero_site.inject_fault("503", method="PUT", path_contains="/Invoices", count=MAX_ATTEMPTS + 5)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        # when a run comes (the previous backoff skipped)
        retries_due_now()
        run = sync()
        links = list(XeroLink.objects.filter(kind=RecordKind.SALE))
        rows = OutboxEntry.objects.filter(kind=RecordKind.SALE)
        if attempt < MAX_ATTEMPTS:
            # then the attempt is counted and the rows wait longer each time (exponential, jittered)
            assert [link.attempts for link in links] == [attempt] * 2
            assert {link.state for link in links} != {State.DEAD}
            low, high = backoff_bounds(attempt)
            delays = [(entry.not_before - run.started_at).total_seconds() for entry in rows]
            assert delays and all(low - 1 <= delay <= high + 1 for delay in delays), (attempt, delays)

    # then after the last attempt the sales are dead-lettered, with the reason, and their rows are gone
    assert [link.state for link in links] == [State.DEAD] * 2
    assert all(f"{MAX_ATTEMPTS} attempts" in link.last_error and "503" in link.last_error for link in links)
    assert not OutboxEntry.objects.filter(kind=RecordKind.SALE).exists()
    assert len(accounting_calls(xero_site, "PUT", "/Invoices")) == MAX_ATTEMPTS

    # and later runs leave them alone: no further invoice call
    sync()
    assert len(accounting_calls(xero_site, "PUT", "/Invoices")) == MAX_ATTEMPTS
    assert xero_site.invoices() == []


# --- Idempotency-Key ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_write_the_push_makes_carries_its_own_idempotency_key(xero_connected, xero_site):
    # given 60 paid sales: two batches of each kind
    sales = shop_with_sales(60)

    # when the push runs
    sync()

    # then every write carried an Idempotency-Key of at most 128 characters, a different one per batch
    made = writes(xero_site)
    assert [(call["method"], call["path"].rsplit("/", 1)[1]) for call in made] == (
        [("PUT", "Contacts")] * 2 + [("PUT", "Invoices")] * 2 + [("PUT", "Payments")] * 2)
    keys = [call["headers"].get("idempotency-key") for call in made]
    assert all(keys) and all(len(key) <= 128 for key in keys), keys
    assert len(set(keys)) == len(keys)
    assert_xero_holds_each_once(xero_site, sales)


@pytest.mark.django_db
def test_a_batch_retried_within_the_run_carries_the_same_idempotency_key(xero_connected, xero_site, settings):
    # given paid sales, and the first payments call refused for the minute
    sales = shop_with_sales(3)
    # (a short pacing window keeps the wait after the 429 short: how long is not what this test is about)
    settings.XERO_RATE_WINDOW_SECONDS = 1
    xero_site.inject_fault("429", problem="minute", retry_after=1, method="PUT", path_contains="/Payments")

    # when the push runs
    run = sync()

    # then the identical batch went again, after Retry-After, with the same key
    refused, accepted = accounting_calls(xero_site, "PUT", "/Payments")
    assert (refused["status"], accepted["status"]) == (429, 200)
    assert accepted["request_json"] == refused["request_json"]
    assert accepted["headers"]["idempotency-key"] == refused["headers"]["idempotency-key"]
    assert accepted["at"] - refused["at"] >= datetime.timedelta(seconds=1)
    assert run.status == SyncRun.Status.DONE
    assert_xero_holds_each_once(xero_site, sales)


# --- Two workers at once -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_at_once_hold_one_conversation_and_send_nothing_twice(
        xero_connected, xero_site, settings):
    # given 150 paid sales waiting, and a slow conversation (paced to 2 calls per 0.4 s)
    sales = shop_with_sales(150)
    settings.XERO_RATE_WINDOW_SECONDS = 0.4
    settings.XERO_RATE_PER_WINDOW = 3
    start = threading.Barrier(2)
    xero_site.reset_peak_in_flight()

    def worker() -> SyncRun | None:
        try:
            start.wait()
            return sync()
        finally:
            db.close()

    # when two workers start a sync at the same moment
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: worker(), range(2)))

    # then one of them ran and the other stood aside
    ran = [result for result in results if result is not None]
    assert len(ran) == 1 and results.count(None) == 1
    assert ran[0].status == SyncRun.Status.DONE
    assert ran[0].pushed == {"contact": 150, "sale": 150, "receipt": 150}
    assert SyncRun.objects.count() == 1
    # and Xero never had two of our calls in flight at once
    assert xero_site.peak_in_flight() <= 1
    # and nothing was sent twice; everything is in Xero once
    assert len(writes(xero_site)) == 3 * 3
    assert_nothing_sent_twice(xero_site)
    assert_xero_holds_each_once(xero_site, sales)
    assert not OutboxEntry.objects.exists()


# --- A worker killed in the middle of a batch ---------------------------------------------------------


def xero_sync_run_command() -> list[str]:
    return [sys.executable, "manage.py", "xero_sync", "run", "--push-only"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_a_batch_and_restarted_leaves_everything_in_xero_once(
        xero_connected, xero_site):
    # given 60 paid sales (two batches of each kind) and a Xero that stores the first invoice batch but
    # then takes a long time to answer it
    sales = shop_with_sales(60)
    xero_site.inject_fault("hang", method="PUT", path_contains="/Invoices", after_write=True, seconds=30)
    env = process_environment(xero_site, XERO_HTTP_TIMEOUT="60")  # still waiting when it is killed

    # when a real worker process runs the push
    worker = subprocess.Popen(xero_sync_run_command(), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while len(xero_site.invoices()) < BATCH_SIZE and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.poll() is None, worker.communicate()[0].decode(errors="replace")[-3000:]
        # and is killed (SIGKILL: no cleanup of any kind) while that batch is in flight
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=10)

    # then it died mid-run: contacts and the first invoice batch in Xero, no payment yet
    assert worker.returncode == -signal.SIGKILL
    assert len(xero_site.invoices()) == BATCH_SIZE
    assert xero_site.payments() == []
    assert len({c.get("ContactNumber") for c in xero_site.contacts()} - {None, ""}) == 60
    # and the batch it was waiting on is marked in flight, with no Xero id: an unknown outcome
    assert XeroLink.objects.filter(kind=RecordKind.SALE, state=State.IN_FLIGHT, xero_id=None).count() == BATCH_SIZE
    # and its lease still stands (a worker killed like that cannot release it)
    assert Lease.objects.filter(expires_at__gt=timezone.now()).exclude(owner="").count() == 1

    # when the lease has expired (what time does) and a worker runs the push again
    Lease.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    retries_due_now()
    again = subprocess.run(xero_sync_run_command(), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=60)

    # then it finished, and Xero holds every contact, invoice and payment exactly once
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.strip(), "the command printed no summary"
    assert_xero_holds_each_once(xero_site, sales)
    assert not OutboxEntry.objects.exists()


def test_a_run_out_of_time_says_work_remains_and_the_next_run_sends_the_rest(xero_connected, xero_site):
    # given three orders waiting to be pushed
    sales = shop_with_sales(3)

    # when a run starts with its time budget already spent
    stopped = sync_run(trigger="manual", force=True, pull=False, budget_seconds=-1)

    # then it sent nothing, kept every change, and says work remains (the task enqueues a follow-up run)
    assert stopped.status == SyncRun.Status.DONE
    assert stopped.work_remains is True
    assert SyncRun.objects.get(pk=stopped.pk).work_remains is True
    assert writes(xero_site) == []
    assert OutboxEntry.objects.filter(not_before__isnull=True).exists()

    # when the follow-up run goes
    follow_up = sync()

    # then it sent the rest, and no work remains
    assert follow_up.work_remains is False
    assert_xero_holds_each_once(xero_site, sales)
    assert not OutboxEntry.objects.exists()


def test_a_run_out_of_time_does_not_look_up_records_lost_in_flight(xero_connected, xero_site):
    # given a sale and a receipt left in flight by a run that died mid-call
    (sale,) = shop_with_sales(1)
    xero_site.inject_fault("503", method="PUT", path_contains="/Invoices")
    sync()
    XeroLink.objects.filter(kind__in=[RecordKind.SALE, RecordKind.RECEIPT]).update(
        state=XeroLink.State.IN_FLIGHT, in_flight_since=timezone.now())
    retries_due_now()
    xero_site.reset_calls()

    # when a run starts with its time budget already spent
    stopped = sync_run(trigger="manual", force=True, pull=False, budget_seconds=-1)

    # then it asked Xero nothing (no lookups by number or reference), and the next run finishes the job
    assert stopped.work_remains is True
    assert accounting_calls(xero_site) == [], [(c["method"], c["path"]) for c in accounting_calls(xero_site)]
    sync()
    assert_xero_holds_each_once(xero_site, [sale])


# --- A request Xero cannot read, and the words the worker logs -----------------------------------------


def test_one_invoice_xero_cannot_read_fails_alone_and_the_other_49_land(xero_connected, xero_site, monkeypatch):
    import math

    from xero_sync import mappers

    # given 50 sales, one of which maps to a number Xero cannot read (beyond a .NET decimal)
    sales = shop_with_sales(BATCH_SIZE, sales_per_contact=BATCH_SIZE, receipts=False)
    bad = sales[17]
    real_payload = mappers.invoice_payload

    def payload(sale, *args, **kwargs):
        built = real_payload(sale, *args, **kwargs)
        if sale.pk == bad.pk:
            built["LineItems"][0]["UnitAmount"] = Decimal("1E+30")
        return built

    monkeypatch.setattr(mappers, "invoice_payload", payload)

    # when the push runs
    sync()

    # then Xero holds the other 49, and the one it could not read is an error in Xero's words
    numbers = sorted(invoice["InvoiceNumber"] for invoice in xero_site.invoices())
    assert numbers == sorted(sale.number for sale in sales if sale.pk != bad.pk)
    link = XeroLink.objects.get(kind=RecordKind.SALE, local_id=bad.pk)
    assert link.state == State.ERROR
    assert link.last_error.startswith("JSON request body could not be read")
    assert {link.state for link in XeroLink.objects.filter(kind=RecordKind.SALE).exclude(local_id=bad.pk)} == {
        State.SYNCED}
    # and the halving cost about two calls per halving, not one call per record
    invoice_writes = [call for call in writes(xero_site) if "/Invoices" in call["path"]]
    assert len(invoice_writes) <= 1 + 2 * math.ceil(math.log2(BATCH_SIZE))


def _worker_log_lines(xero_site, caplog, monkeypatch, logger_prefix: str) -> list[str]:
    """The log lines of a push of two sales, one of which Xero cannot read."""
    import logging

    from xero_sync import mappers

    sales = shop_with_sales(2, receipts=False)
    real_payload = mappers.invoice_payload

    def payload(sale, *args, **kwargs):
        built = real_payload(sale, *args, **kwargs)
        if sale.pk == sales[0].pk:
            built["LineItems"][0]["UnitAmount"] = Decimal("1E+30")
        return built

    monkeypatch.setattr(mappers, "invoice_payload", payload)
    with caplog.at_level(logging.INFO, logger="xero_sync"):
        sync()
    return [record.getMessage() for record in caplog.records if record.name.startswith(logger_prefix)]


def assert_in_a_persons_words(lines: list[str]) -> None:
    assert lines
    for line in lines:
        assert "RecordKind" not in line and "{" not in line and "None" not in line, line


def test_the_push_logs_in_the_admins_words(xero_connected, xero_site, caplog, monkeypatch):
    lines = _worker_log_lines(xero_site, caplog, monkeypatch, "xero_sync.services.push")
    assert_in_a_persons_words(lines)
    assert any("sending it in halves" in line for line in lines)


def test_the_runs_final_log_line_counts_in_the_admins_words(xero_connected, xero_site, caplog, monkeypatch):
    lines = _worker_log_lines(xero_site, caplog, monkeypatch, "xero_sync.services.sync")
    assert_in_a_persons_words(lines)
    assert any("pushed 2 contacts, 1 sale" in line and "failed 1 sale" in line for line in lines), lines
