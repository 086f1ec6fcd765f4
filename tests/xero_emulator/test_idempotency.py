"""Idempotency-Key: replay of the first response within the retention window, counted against limits (§5)."""

from xero_emulator.testing import running_emulator

from .helpers import XeroClient, body


def put_contact(xero, name: str, key: str, path: str = "/Contacts", method: str = "PUT"):
    return xero.request(method, path, json={"Contacts": [{"Name": name}]}, headers={"Idempotency-Key": key})


def test_the_same_key_replays_the_first_response_exactly_without_running_again(emulator, xero):
    # Given a write made with an Idempotency-Key
    first = put_contact(xero, "Ann", "order-1-contact")

    # When it is retried with the same key (even with another body)
    retry = put_contact(xero, "Someone Else", "order-1-contact")

    # Then the first response comes back byte for byte and nothing new was written
    assert (retry.status_code, retry.content) == (first.status_code, first.content)
    assert [c["Name"] for c in emulator.contacts()] == ["Ann"]
    assert emulator.calls_to("PUT", "/Contacts")[-1]["replayed"] is True


def test_a_replay_still_counts_against_the_rate_limit(emulator, xero):
    emulator.set_limits(per_minute=2)
    put_contact(xero, "Ann", "k")

    replay = put_contact(xero, "Ann", "k")

    assert replay.status_code == 200 and replay.headers["X-MinLimit-Remaining"] == "0"
    assert put_contact(xero, "Ann", "k").status_code == 429


def test_error_responses_are_replayed_too(emulator, xero):
    refused = xero.put(
        "/Contacts", {"Contacts": [{"EmailAddress": "x@example.com"}]}, headers={"Idempotency-Key": "k"}
    )
    assert refused.status_code == 400

    replay = put_contact(xero, "A Valid Name", "k")

    assert (replay.status_code, replay.content) == (400, refused.content)
    assert emulator.contacts() == []


def test_the_key_is_scoped_by_method_and_path(emulator, xero):
    put_contact(xero, "Ann", "shared-key")
    posted = put_contact(xero, "Bob", "shared-key", method="POST")
    assert posted.status_code == 200
    assert sorted(c["Name"] for c in emulator.contacts()) == ["Ann", "Bob"]


def test_after_the_retention_window_the_call_runs_again(emulator, xero):
    put_contact(xero, "Ann", "k")
    emulator.clock.advance(361)
    xero.token = emulator.issue_token()

    again = put_contact(xero, "Ann", "k")

    # Ran again: Ann exists now, so the name is taken
    assert again.status_code == 400
    assert body(again)["Elements"][0]["ValidationErrors"][0]["Message"].startswith("The contact name Ann")


def test_retention_is_configurable():
    with running_emulator(idempotency_seconds=10) as emulator:
        xero = XeroClient(emulator)
        put_contact(xero, "Ann", "k")
        emulator.clock.advance(9)
        assert put_contact(xero, "Ann", "k").status_code == 200
        emulator.clock.advance(2)
        assert put_contact(xero, "Ann", "k").status_code == 400


def test_a_key_longer_than_128_characters_is_refused(emulator, xero):
    assert put_contact(xero, "Ann", "k" * 129).status_code == 400
    assert emulator.contacts() == []
    assert put_contact(xero, "Ann", "k" * 128).status_code == 200


def test_a_request_cut_off_mid_body_is_not_acted_on_nor_replayed_to_its_retry(emulator, xero):
    import json
    import socket
    from urllib.parse import urlsplit

    # Given a client that dies while sending a keyed write: half its body sent, then the connection closed
    body = json.dumps({"Contacts": [{"Name": "Ann"}]}).encode()
    address = urlsplit(emulator.base_url)
    head = "".join(f"{name}: {value}\r\n" for name, value in {
        **xero.headers(), "Idempotency-Key": "order-1-contact", "Content-Type": "application/json",
        "Content-Length": str(len(body)), "Host": address.netloc}.items())
    with socket.create_connection((address.hostname, address.port), timeout=5) as cut_off:
        cut_off.sendall(f"PUT /api.xro/2.0/Contacts HTTP/1.1\r\n{head}\r\n".encode() + body[: len(body) // 2])
        cut_off.shutdown(socket.SHUT_WR)
        assert cut_off.recv(1024) == b""  # no answer: the request never arrived whole

    # When its retry sends the whole request under the same key
    retry = put_contact(xero, "Ann", "order-1-contact")

    # Then the retry is served as a first call, and Ann is in Xero once
    assert retry.status_code == 200, retry.text
    assert [c["Name"] for c in emulator.contacts()] == ["Ann"]
    assert emulator.calls_to("PUT", "/Contacts")[-1]["replayed"] is False
