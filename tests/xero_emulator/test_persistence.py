"""The state file: saved atomically after every write, loaded at start; and the command-line server."""

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from xero_emulator import Emulator
from xero_emulator.testing import running_emulator

from .helpers import XeroClient, body, line

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_organisation_and_tokens_survive_a_restart(tmp_path):
    state = tmp_path / "xero.json"

    # Given a run that wrote a contact, an invoice and a payment, a credit note allocated and refunded
    with running_emulator(state_file=state) as emulator:
        xero = XeroClient(emulator)
        sale = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])
        xero.pay(sale["InvoiceID"], 15)
        note = xero.create_credit_note()
        xero.allocate(note["CreditNoteID"], sale["InvoiceID"], 5)
        xero.refund(note["CreditNoteID"], 1)
        tenant_id, token = emulator.default_tenant_id, xero.token
        before = (emulator.contacts(), emulator.invoices(), emulator.payments(), emulator.credit_notes())

    # Then the state file holds it, and no temporary file is left behind
    assert [p.name for p in tmp_path.iterdir()] == ["xero.json"]
    assert json.loads(state.read_text())["default_tenant_id"] == tenant_id

    # When the emulator starts again from the file
    with running_emulator(state_file=state) as emulator:
        # Then the same organisation, records and tokens are there
        assert emulator.default_tenant_id == tenant_id
        assert (emulator.contacts(), emulator.invoices(), emulator.payments(), emulator.credit_notes()) == before
        xero = XeroClient(emulator, token=token)
        assert (
            body(xero.get(f"/Invoices/{sale['InvoiceID']}"))["Invoices"][0]["AmountDue"]
            == before[1][0]["AmountDue"]
        )
        refreshed = requests.post(
            emulator.token_url,
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=("emulator-client", "emulator-secret"),
            timeout=5,
        )
        assert refreshed.status_code == 200
        # and the invoice and credit note counters carry on
        assert xero.create_invoice()["InvoiceNumber"] == "INV-0002"
        assert xero.create_credit_note()["CreditNoteNumber"] == "CN-0002"


def test_a_state_file_from_before_credit_notes_still_loads(tmp_path):
    emulator = Emulator()
    emulator.create_contact(Name="Ann")
    emulator.save(tmp_path / "old.json")
    snapshot = json.loads((tmp_path / "old.json").read_text())
    for org in snapshot["organisations"]:
        for key in ("credit_notes", "allocations", "next_credit_note_number"):
            del org[key]
    (tmp_path / "old.json").write_text(json.dumps(snapshot))

    loaded = Emulator(state_file=tmp_path / "old.json")

    assert [c["Name"] for c in loaded.contacts()] == ["Ann"] and loaded.credit_notes() == []
    assert loaded.create_credit_note(Contact={"Name": "Ann"}, LineItems=[line()])["CreditNoteNumber"] == "CN-0001"


def test_save_writes_a_snapshot_another_emulator_can_load(tmp_path):
    emulator = Emulator()
    emulator.create_contact(Name="Ann")
    emulator.save(tmp_path / "snapshot.json")

    loaded = Emulator(state_file=tmp_path / "snapshot.json")

    assert [c["Name"] for c in loaded.contacts()] == ["Ann"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _server(port: int, state: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "xero_emulator", "--port", str(port), "--state", str(state)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_python_m_xero_emulator_serves_and_keeps_its_state_across_restarts(tmp_path):
    port, state = _free_port(), tmp_path / "demo.json"

    with _server(port, state) as base_url:
        created = requests.post(
            f"{base_url}/_emulator/orgs/default/contacts", json={"Name": "Demo Customer"}, timeout=5
        )
        assert created.status_code == 200
        assert "Demo Customer" in requests.get(base_url + "/", timeout=5).text

    with _server(port, state) as base_url:
        page = requests.get(base_url + "/", timeout=5)
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Demo Customer" in page.text and "Demo Company (NZ)" in page.text
