"""Injected faults: 429/500/503, dropped connections, hangs, failures after the write, random ones."""

import pytest
import requests

from xero_emulator.testing import running_emulator

from .helpers import XeroClient, body


def test_an_injected_429_carries_retry_after_and_the_problem(emulator, xero):
    emulator.inject_fault("429", retry_after=12)

    refused = xero.get("/Contacts")

    assert refused.status_code == 429
    assert (refused.headers["X-Rate-Limit-Problem"], refused.headers["Retry-After"]) == ("minute", "12")
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    assert xero.get("/Contacts").status_code == 200  # only the next call


def test_an_injected_daily_429_waits_until_midnight_by_default(emulator, xero):
    emulator.inject_fault("429", problem="day")
    refused = xero.get("/Contacts")
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert refused.headers["X-DayLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400


def test_an_injected_minute_429_defaults_to_the_window_length():
    with running_emulator(window_seconds=2) as emulator:
        emulator.inject_fault("429")
        assert XeroClient(emulator).get("/Contacts").headers["Retry-After"] == "2"


def test_500_and_503_for_the_next_n_calls(emulator, xero):
    emulator.inject_fault("503", count=2)
    emulator.inject_fault("500")

    statuses = [xero.get("/Contacts").status_code for _ in range(4)]

    assert statuses == [503, 503, 500, 200]
    assert body(xero.session.get(emulator.api_url + "/Contacts", headers=xero.headers()))["Contacts"] == []
    assert [c["fault"] for c in emulator.calls_to("GET", "/Contacts")[:3]] == ["503", "503", "500"]


def test_faults_can_target_a_method_and_path(emulator, xero):
    emulator.inject_fault("503", method="PUT", path_contains="/Invoices")

    assert xero.get("/Invoices").status_code == 200
    assert xero.put("/Contacts", {"Contacts": [{"Name": "Ann"}]}).status_code == 200
    assert xero.put("/Invoices", {"Invoices": []}).status_code == 503
    assert emulator.contacts()[0]["Name"] == "Ann"


def test_a_dropped_connection_gets_no_answer_and_nothing_is_written(emulator, xero):
    emulator.inject_fault("drop")

    with pytest.raises(requests.ConnectionError):
        xero.put("/Contacts", {"Contacts": [{"Name": "Ann"}]})

    assert emulator.contacts() == []
    call = emulator.calls_to("PUT", "/Contacts")[0]
    assert (call["status"], call["fault"], call["response_json"]) == (None, "drop", None)


def test_a_hang_outlasts_the_clients_timeout(emulator, xero):
    emulator.inject_fault("hang", seconds=5)
    with pytest.raises(requests.Timeout):
        xero.get("/Contacts", timeout=0.3)


def test_a_failure_after_the_write_stores_the_write_yet_answers_500(emulator, xero):
    emulator.inject_fault("500", method="PUT", after_write=True)

    response = xero.put("/Contacts", {"Contacts": [{"Name": "Ann"}]})

    assert response.status_code == 500
    assert body(response)["Type"] == "UnknownErrorException"
    assert [c["Name"] for c in emulator.contacts()] == ["Ann"]


def test_a_retry_with_the_same_idempotency_key_recovers_a_dropped_write(emulator, xero):
    # Given a write whose answer is lost after it was stored (the unknown-outcome case)
    emulator.inject_fault("drop", after_write=True)
    payload = {"Contacts": [{"Name": "Ann"}]}
    with pytest.raises(requests.ConnectionError):
        xero.put("/Contacts", payload, headers={"Idempotency-Key": "contact-42"})

    # When it is retried with the same key
    retry = xero.put("/Contacts", payload, headers={"Idempotency-Key": "contact-42"})

    # Then the original answer comes back (with the ContactID) and no duplicate is made
    assert retry.status_code == 200
    assert body(retry)["Contacts"][0]["ContactID"] == emulator.contacts()[0]["ContactID"]
    assert len(emulator.contacts()) == 1


def test_a_token_refresh_can_lose_its_answer_and_the_old_refresh_token_still_works(emulator):
    # Given the token endpoint rotates the refresh token but the answer is lost
    token = emulator.issue_token()
    emulator.inject_fault("drop", path_contains="/connect/token", after_write=True)
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    auth = ("emulator-client", "emulator-secret")
    with pytest.raises(requests.ConnectionError):
        requests.post(emulator.token_url, data=form, auth=auth, timeout=5)

    # When the client retries with the refresh token it still has
    retried = requests.post(emulator.token_url, data=form, auth=auth, timeout=5)

    # Then the grace period gives it a fresh pair
    assert retried.status_code == 200 and retried.json()["refresh_token"] != token["refresh_token"]


def test_identity_calls_fail_only_when_targeted(emulator, xero):
    emulator.inject_fault("503")
    token = emulator.issue_token()
    refreshed = requests.post(
        emulator.token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=("emulator-client", "emulator-secret"),
        timeout=5,
    )
    assert refreshed.status_code == 200
    assert xero.get("/Contacts").status_code == 503


def test_random_faults_follow_the_seed():
    def pattern(seed: int) -> list[int]:
        with running_emulator(seed=seed, limits_enabled=False) as emulator:
            emulator.inject_fault("500", probability=0.5)
            client = XeroClient(emulator)
            return [client.get("/Organisation").status_code for _ in range(20)]

    first = pattern(7)
    assert first == pattern(7)
    assert {200, 500} == set(first)


def test_clear_faults(emulator, xero):
    emulator.inject_fault("500", count=5)
    emulator.clear_faults()
    assert xero.get("/Contacts").status_code == 200


def test_an_unknown_fault_kind_is_refused(emulator):
    with pytest.raises(ValueError):
        emulator.inject_fault("418")
