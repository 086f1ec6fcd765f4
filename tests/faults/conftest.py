"""The fault-injection suite's machinery: real `celery -A config worker` processes on the test's
PostgreSQL database, a broker of their own (on the Redis REDIS_URL names, every key under a prefix the test
chose and only those keys deleted afterwards; or a private redis-server), the live emulator, and the
checks every test ends with.

Work is driven the way the site drives it: `xero_sync.sync_now` / `sync_if_due` / `pull_now` messages on
the broker, consumed by the worker processes. The test only plays the parts of time (leases and backoffs
that would have run out) and of the operator (restarting what was killed).
"""

import datetime
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connections
from django.utils import timezone

from tests.support import REPO_ROOT, process_environment

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


def pytest_configure(config):
    if any(line.startswith("faults:") for line in config.getini("markers")):
        return  # registered in pyproject.toml
    config.addinivalue_line(
        "markers", "faults: fault-injection suite: real Celery workers, the real broker, PostgreSQL and the "
                   "emulator (pytest -m faults)")


# --- Waiting -------------------------------------------------------------------------------------------


def wait_for(check: Callable[[], object], *, seconds: float, what: str | Callable[[], str],
             every: float = 0.1):
    """Poll `check` until it returns something true; fail after `seconds` saying `what` (a callable `what` is
    called only then, so it can describe the state at the time of failure)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {described}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- The broker ----------------------------------------------------------------------------------------


def broker_keys(url: str, prefix: str) -> list[bytes]:
    """The keys under `prefix` in the Redis database `url` names."""
    return list(redis.Redis.from_url(url).scan_iter(match=f"{prefix}*", count=1000))


def broker_keys_delete(url: str, prefix: str) -> int:
    """Delete the keys under `prefix`, and nothing else: the database is shared."""
    if not prefix:
        raise ValueError("no prefix: that would be every key in a shared database")
    keys = broker_keys(url, prefix)
    return redis.Redis.from_url(url).delete(*keys) if keys else 0


class Broker:
    """Sends task messages to a Redis broker, as the site's nudges, beat and buttons do. With `key_prefix`,
    every key kombu uses (queues, the unacked hash, bindings) is under it (tests/faults/worker.py)."""

    def __init__(self, url: str, key_prefix: str = ""):
        self.url = url
        self.key_prefix = key_prefix
        self.app = Celery("faults-client", broker=url, set_as_current=False)
        self.app.conf.broker_connection_retry_on_startup = False
        self.app.conf.broker_transport_options = {"visibility_timeout": 3600, "global_keyprefix": key_prefix}
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        """The Redis key kombu uses for `name` ("celery": the default queue; "unacked": taken, not acked)."""
        return f"{self.key_prefix}{name}"

    def queued(self) -> int:
        return redis.Redis.from_url(self.url).llen(self.key("celery"))

    def send(self, task: str, **kwargs) -> None:
        with self._lock:
            self.app.send_task(task, kwargs=kwargs, retry=True,
                               retry_policy={"max_retries": 20, "interval_start": 0.2, "interval_step": 0.2,
                                             "interval_max": 1})

    def sync_now(self, times: int = 1) -> None:
        for _ in range(times):
            self.send("xero_sync.sync_now", trigger="manual")

    def ticking(self, task: str = "xero_sync.sync_now", every: float = 2.0) -> "Ticker":
        """A stand-in for beat: sends `task` every few seconds while nothing is queued."""
        return Ticker(self, task, every)

    def drained(self) -> bool:
        """Every message sent has been taken and acknowledged (none queued, none being worked on)."""
        client = redis.Redis.from_url(self.url)
        return client.llen(self.key("celery")) == 0 and client.hlen(self.key("unacked")) == 0

    def close(self) -> None:
        self.app.close()


class Ticker:
    def __init__(self, broker: Broker, task: str, every: float):
        self.broker, self.task, self.every = broker, task, every
        self.sent = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if self.broker.queued() == 0:
                    self.broker.send(self.task)
                    self.sent += 1
            except Exception as error:  # a tick that fails is reported; the next one tries again
                self.errors.append(repr(error))

    def state(self) -> str:
        try:
            queued = self.broker.queued()
        except redis.RedisError as error:
            queued = repr(error)
        return f"ticks sent {self.sent}, tick errors {self.errors[-3:]}, messages queued {queued}"

    def __enter__(self) -> "Ticker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def broker_url() -> str:
    """The Redis REDIS_URL names, database number and all: other programs may use it too, so the suite
    never flushes it (its keys are under `broker_key_prefix`)."""
    return settings.REDIS_URL


@pytest.fixture
def broker_key_prefix(broker_url):
    """A prefix no one else uses, for every broker key of this test; those keys, and only those, are
    deleted afterwards."""
    prefix = f"xero-shop-faults:{uuid.uuid4().hex}:"
    yield prefix
    broker_keys_delete(broker_url, prefix)


@pytest.fixture
def broker(broker_url, broker_key_prefix):
    sender = Broker(broker_url, broker_key_prefix)
    yield sender
    sender.close()


class RedisServer:
    """A private redis-server (no persistence) that a test may kill and restart: never the shared one."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: self._pings(client), seconds=10, what=f"redis-server on port {self.port}")

    @staticmethod
    def _pings(client) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --- Worker processes ----------------------------------------------------------------------------------


def worker_environment(xero, broker_url: str, home: Path, key_prefix: str = "", **overrides: str) -> dict[str, str]:
    """A Celery worker's environment: this test's database, broker (and its key prefix) and emulator."""
    return process_environment(xero, **{"HOME": str(home), "REDIS_URL": broker_url, "XERO_HTTP_TIMEOUT": "10",
                                        "FAULTS_BROKER_KEY_PREFIX": key_prefix, **overrides})


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


class Worker:
    """One `celery -A config worker` process (its own session, so kill -9 takes its pool children too), with
    its broker keys under the test's prefix (tests/faults/worker.py)."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, concurrency: int,
                 loglevel: str = "WARNING"):
        self.name = name
        self.loglevel = loglevel
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        command = [sys.executable, "-m", "tests.faults.worker", "--loglevel", self.loglevel,
                   "--concurrency", str(self.concurrency), "--hostname", f"{self.name}@%h",
                   "--without-gossip", "--without-mingle"]
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n=== start {self.starts} ===\n")
            log.flush()
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pool_children(self) -> list[int]:
        return _children(self.process.pid) if self.alive() else []

    def kill_hard(self) -> None:
        """SIGKILL to the worker and its pool processes at once: a lost machine or container."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill_pool_child(self) -> bool:
        """SIGKILL to the pool process running the task (the OOM killer's way); the worker itself lives on
        and starts a new one. False when there was no child to kill."""
        children = self.pool_children()
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return bool(children)

    def terminate(self) -> None:
        """SIGTERM: Celery's warm shutdown (finish the running task, give back the reserved ones)."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15) -> None:
        self.terminate()
        if not self.alive():
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_hard()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Workers:
    def __init__(self, xero, broker_url: str, tmp_path: Path, key_prefix: str = ""):
        self.xero = xero
        self.broker_url = broker_url
        self.key_prefix = key_prefix
        self.tmp_path = tmp_path
        self.all: list[Worker] = []

    def start(self, count: int = 1, *, concurrency: int = 1, broker_url: str | None = None,
              loglevel: str = "WARNING", **env_overrides: str) -> list[Worker]:
        """Workers on the test's broker; or on `broker_url`, a private redis-server the test started (no
        prefix there: it is the test's alone, and the site's own nudges reach it unprefixed)."""
        started = []
        for _ in range(count):
            url, prefix = (broker_url, "") if broker_url else (self.broker_url, self.key_prefix)
            env = worker_environment(self.xero, url, self.tmp_path, prefix, **env_overrides)
            worker = Worker(f"faults{len(self.all) + 1}", env, self.tmp_path, concurrency, loglevel)
            worker.start()
            self.all.append(worker)
            started.append(worker)
        return started

    def stop_all(self) -> None:
        for worker in self.all:
            worker.terminate()
        deadline = time.monotonic() + 15
        for worker in self.all:
            worker.stop(timeout=max(0.1, deadline - time.monotonic()))

    def logs(self) -> str:
        return "\n".join(f"--- {worker.name} ---\n{worker.log_tail()}" for worker in self.all)


@pytest.fixture
def workers(xero_site, broker_url, broker_key_prefix, tmp_path):
    """Starts worker processes on request; stops them (SIGTERM, then SIGKILL) before the emulator and the
    test database go away (and before the broker's keys are deleted)."""
    pool = Workers(xero_site, broker_url, tmp_path, broker_key_prefix)
    yield pool
    pool.stop_all()
    connections.close_all()


@pytest.fixture
def off_contract(xero_site):
    """For tests that plant records breaking Xero's own schema on purpose: Xero's answers carrying them are
    kept out of the contract check."""
    yield
    xero_site.reset_calls()


@pytest.fixture
def emulator_limits(xero_site):
    """Sets Xero's limits on the emulator, compressed in time:
    `emulator_limits(per_minute=10, window_seconds=2)`."""

    def apply(per_minute: int = 60, window_seconds: float = 60, per_day: int = 5000, concurrent: int = 5):
        xero_site.set_limits(per_minute=per_minute, window_seconds=window_seconds, per_day=per_day,
                             concurrent=concurrent)

    return apply


# --- The shop's side -----------------------------------------------------------------------------------


def place_orders(count: int, *, prefix: str = "Customer") -> None:
    """`count` web orders, each a new contact, a confirmed sale and its card receipt, through the shop's
    services (so each records its outbox rows as the admin and checkout do). About 25 ms an order here,
    nearly all of it PostgreSQL round trips (threads do not help: the sale-number counter serialises them)."""
    from ecommerce import selectors, services
    from ecommerce.models import PaymentMethod

    card = PaymentMethod.objects.get(code="card")
    for n in range(count):
        contact = services.contact_create(first_name=f"{prefix}{n:05d}", last_name="Buyer",
                                          email=f"{prefix.lower()}{n:05d}@example.com")
        sale = services.sale_create(contact=contact, lines=[GST_LINE], confirm=True)
        services.receipt_record(sale=sale, payment_method=card, amount=selectors.sale_totals(sale).total)


def hang_noticed(xero) -> threading.Event:
    """An event set the moment Xero starts holding back an answer (an injected "hang"): the test acts then,
    at that point of the run's progress, not after a guessed time."""
    held = threading.Event()
    pick = xero.faults.pick

    def pick_and_tell(method, path, *, accounting):
        fault = pick(method, path, accounting=accounting)
        if fault is not None and fault.kind == "hang":
            held.set()
        return fault

    xero.faults.pick = pick_and_tell
    return held


# --- Time passing (what the test stands in for) ---------------------------------------------------------


def leases_expire() -> None:
    """A killed worker's lease runs out after LEASE_SECONDS: move it there instead of waiting 11 minutes."""
    from xero_sync.models import Lease

    past = timezone.now() - datetime.timedelta(days=1)
    Lease.objects.filter(name__startswith="xero-sync:").update(expires_at=past)


def retries_due() -> None:
    """The backoff on rows waiting for a retry has run out."""
    from xero_sync.models import OutboxEntry

    past = timezone.now() - datetime.timedelta(days=1)
    OutboxEntry.objects.filter(not_before__isnull=False).update(not_before=past)


def token_expires_in(seconds: float) -> str:
    """Make the stored access token expire `seconds` from now on our side (what time does to it); returns it.
    Where Xero's copy should die too, the test moves the emulator's clock."""
    from xero_sync.crypto import decrypt_token, encrypt_token
    from xero_sync.models import XeroConnection

    connection = XeroConnection.objects.get(is_current=True)
    token = decrypt_token(connection.token_ciphertext)
    token["expires_at"] = time.time() + seconds
    XeroConnection.objects.filter(pk=connection.pk).update(token_ciphertext=encrypt_token(token))
    return token["access_token"]


def refresh_calls(xero) -> list[dict]:
    return [call for call in xero.calls_to("POST", "/connect/token")
            if (call["request_json"] or {}).get("grant_type") == "refresh_token"]


def accounting_calls(xero) -> list[dict]:
    return [call for call in xero.calls if call["path"].startswith("/api.xro/")]


def sync_lease_free() -> bool:
    from xero_sync.models import Lease

    return not Lease.objects.filter(name__startswith="xero-sync:", expires_at__gt=timezone.now()).exists()


def finished_runs() -> int:
    from xero_sync.models import SyncRun

    return SyncRun.objects.exclude(finished_at=None).count()


def run_once_through_a_worker(broker: Broker, *, task: str = "xero_sync.sync_now",
                              seconds: float = 120) -> None:
    """Send one task and wait until a run it started has finished (or it found nothing to do)."""
    before = finished_runs()
    broker.send(task, trigger="manual")
    wait_for(lambda: finished_runs() > before and sync_lease_free(), seconds=seconds, what=f"a run of {task}")


# --- The invariant, checked against what the emulator holds ---------------------------------------------


def xero_records(xero) -> dict[str, list[dict]]:
    """Everything the organisation holds (it starts with no contacts, invoices or payments: whatever is
    there came from the website), less what Xero itself shows as deleted."""
    return {
        "contacts": xero.contacts(),
        "invoices": [i for i in xero.invoices() if i["Status"] != "DELETED"],
        "payments": [p for p in xero.payments() if p["Status"] != "DELETED"],
    }


def xero_counts(xero) -> tuple[int, int, int]:
    held = xero_records(xero)
    return len(held["contacts"]), len(held["invoices"]), len(held["payments"])


def website_counts() -> tuple[int, int, int]:
    """What the website says Xero should hold: contacts with a confirmed sale, confirmed sales, receipts of
    methods that push."""
    from ecommerce.models import Contact, Receipt, Sale
    from xero_sync.models import PaymentMethodConfig

    pushing = PaymentMethodConfig.objects.filter(direction="push").values("payment_method_id")
    confirmed = Sale.objects.filter(status=Sale.Status.CONFIRMED)
    return (Contact.objects.filter(sales__status=Sale.Status.CONFIRMED).distinct().count(), confirmed.count(),
            Receipt.objects.filter(sale__status=Sale.Status.CONFIRMED, payment_method_id__in=pushing).count())


def assert_xero_matches_website(xero) -> None:
    """Counts in Xero equal counts on the website; no ContactNumber, InvoiceNumber or payment Reference is
    held twice; each sale's invoice total, each receipt's payment amount and each contact's email are the
    website's; and every XeroLink is synced with the Xero id the emulator holds."""
    from ecommerce import selectors
    from ecommerce.models import Contact, Receipt, Sale
    from xero_sync.mappers import contact_number, receipt_id_from_reference
    from xero_sync.models import RecordKind, XeroLink

    held = xero_records(xero)
    numbers = [c.get("ContactNumber") for c in held["contacts"]]
    invoice_numbers = [i["InvoiceNumber"] for i in held["invoices"]]
    references = [p.get("Reference") for p in held["payments"]]
    for what, keys in (("ContactNumber", numbers), ("InvoiceNumber", invoice_numbers),
                       ("payment Reference", references)):
        twice = [key for key, seen in Counter(keys).items() if seen > 1]
        assert not twice, f"{what} held twice in Xero: {twice[:5]}"

    sales = {sale.number: sale for sale in
             Sale.objects.filter(status=Sale.Status.CONFIRMED).prefetch_related("lines")}
    contacts = dict(Contact.objects.filter(sales__status=Sale.Status.CONFIRMED).distinct()
                    .values_list("pk", "email"))
    receipts = {receipt.pk: receipt for receipt in Receipt.objects.filter(
        sale__number__in=sales, payment_method__xero_config__direction="push")}
    assert xero_counts(xero) == website_counts() == (len(contacts), len(sales), len(receipts))
    ours = {contact_number(pk) for pk in contacts}
    assert set(numbers) == ours, sorted(set(numbers) ^ ours, key=str)[:5]
    assert set(invoice_numbers) == set(sales)
    assert {i["Type"] for i in held["invoices"]} <= {"ACCREC"}
    assert {receipt_id_from_reference(ref) for ref in references} == set(receipts)
    for invoice in held["invoices"]:
        assert Decimal(str(invoice["Total"])) == selectors.sale_totals(sales[invoice["InvoiceNumber"]]).total
    for payment in held["payments"]:
        receipt = receipts[receipt_id_from_reference(payment["Reference"])]
        assert Decimal(str(payment["Amount"])) == receipt.amount
    local_id = {c["ContactNumber"]: int(c["ContactNumber"].removeprefix("WEB-C")) for c in held["contacts"]}
    stale = [(c["ContactNumber"], c.get("EmailAddress"), contacts[local_id[c["ContactNumber"]]])
             for c in held["contacts"] if c.get("EmailAddress") != contacts[local_id[c["ContactNumber"]]]]
    assert not stale, f"{len(stale)} contacts in Xero differ from the website, e.g. {stale[:3]}"

    expected = {
        RecordKind.CONTACT: {local_id[c["ContactNumber"]]: c["ContactID"] for c in held["contacts"]},
        RecordKind.SALE: {sales[i["InvoiceNumber"]].pk: i["InvoiceID"] for i in held["invoices"]},
        RecordKind.RECEIPT: {receipt_id_from_reference(p["Reference"]): p["PaymentID"]
                             for p in held["payments"]},
    }
    for kind, ids in expected.items():
        links = {link.local_id: link for link in XeroLink.objects.filter(kind=kind)}
        assert {local: str(link.xero_id) for local, link in links.items() if local in ids} == ids, kind
        not_synced = Counter(link.state for link in links.values() if link.state != XeroLink.State.SYNCED)
        assert not not_synced, f"{kind} links not synced: {dict(not_synced)}"


def seeded_random(seed: int) -> random.Random:
    return random.Random(seed)
