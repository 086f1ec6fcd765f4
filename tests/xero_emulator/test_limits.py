"""Rate limits per tenant: minute, day, concurrent, app-wide header; Retry-After; switching off (§1)."""

import threading
import time

import requests

from .helpers import XeroClient


def test_minute_limit_refuses_with_429_and_retry_after_until_a_slot_frees(emulator, xero):
    # Given 2 calls per (60 s) minute
    emulator.set_limits(per_minute=2)

    # When three calls are made
    first, second, third = (xero.get("/Organisation") for _ in range(3))

    # Then the remaining count goes down and the third is refused
    assert (first.headers["X-MinLimit-Remaining"], second.headers["X-MinLimit-Remaining"]) == ("1", "0")
    assert third.status_code == 429
    assert third.headers["X-Rate-Limit-Problem"] == "minute"
    assert third.headers["Retry-After"] == "60"
    assert third.headers["X-MinLimit-Remaining"] == "0"

    # And Retry-After counts down with the clock, then the call goes through
    emulator.clock.advance(30)
    assert xero.get("/Organisation").headers["Retry-After"] == "30"
    emulator.clock.advance(30)
    assert xero.get("/Organisation").status_code == 200


def test_retry_after_scales_with_a_short_window(emulator, xero):
    emulator.set_limits(per_minute=3, window_seconds=2)
    for _ in range(3):
        assert xero.get("/Organisation").status_code == 200

    refused = xero.get("/Organisation")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    emulator.clock.advance(2)
    assert xero.get("/Organisation").status_code == 200


def test_limit_headers_are_on_every_accounting_response_including_errors(emulator, xero):
    for response in (
        xero.get("/Organisation"),
        xero.get("/Invoices/00000000-0000-0000-0000-000000000000"),  # 404
        xero.put("/Contacts", {"Contacts": [{"EmailAddress": "no-name@example.com"}]}),  # 400
    ):
        assert {"X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"} <= set(
            response.headers
        )
    assert response.status_code == 400
    assert response.headers["X-DayLimit-Remaining"] == "4997"


def test_day_limit_refuses_with_retry_after_until_the_oldest_call_is_a_day_old(emulator, xero):
    emulator.set_limits(per_day=3)
    for _ in range(3):
        assert xero.get("/Organisation").status_code == 200

    refused = xero.get("/Organisation")

    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert refused.headers["X-DayLimit-Remaining"] == "0"
    assert 86390 <= int(refused.headers["Retry-After"]) <= 86400
    emulator.clock.advance(86400)
    xero.token = emulator.issue_token()  # a day later the access token has long expired
    assert xero.get("/Organisation").status_code == 200


def test_an_organisation_can_have_its_own_daily_limit_and_limits_are_per_tenant(emulator, xero):
    starter = emulator.add_organisation("Starter Tier Ltd", day_limit=1)
    starter_client = XeroClient(emulator, tenant_id=starter)

    assert starter_client.get("/Organisation").headers["X-DayLimit-Remaining"] == "0"
    assert starter_client.get("/Organisation").status_code == 429
    assert xero.get("/Organisation").headers["X-DayLimit-Remaining"] == "4999"


def test_app_minute_header_counts_calls_across_tenants(emulator, xero):
    other = XeroClient(emulator, tenant_id=emulator.add_organisation("Other Ltd"))
    first = int(xero.get("/Organisation").headers["X-AppMinLimit-Remaining"])
    other.get("/Organisation")
    assert int(xero.get("/Organisation").headers["X-AppMinLimit-Remaining"]) == first - 2


def test_a_sixth_concurrent_call_is_refused_without_retry_after(emulator, xero):
    # Given five calls held in flight by the server (a slow "hang" of one second each)
    emulator.inject_fault("hang", count=5, seconds=1, path_contains="/Contacts")
    errors = []

    def slow_call():
        try:
            XeroClient(emulator, token=xero.token).get("/Contacts", timeout=5)
        except requests.ConnectionError as error:  # the hang ends by closing the connection
            errors.append(error)

    threads = [threading.Thread(target=slow_call) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 3
    while emulator.in_flight() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emulator.in_flight() == 5

    # When a sixth call arrives
    refused = XeroClient(emulator, token=xero.token).get("/Invoices")

    # Then it is refused as "concurrent", with no Retry-After
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert "Retry-After" not in refused.headers

    # And once the slow calls are over, calls go through again
    for thread in threads:
        thread.join()
    assert len(errors) == 5 and emulator.in_flight() == 0
    assert xero.get("/Invoices").status_code == 200


def test_limits_can_be_switched_off_for_one_tenant(emulator, xero):
    other = XeroClient(emulator, tenant_id=emulator.add_organisation("Limited Ltd"))
    emulator.set_limits(per_minute=1)
    emulator.set_limits(emulator.default_tenant_id, per_minute=1, enabled=False)

    assert all(xero.get("/Organisation").status_code == 200 for _ in range(5))
    assert other.get("/Organisation").status_code == 200
    assert other.get("/Organisation").status_code == 429
