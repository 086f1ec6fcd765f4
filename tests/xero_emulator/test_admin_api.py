"""The admin API (/_emulator/...) as a web page or another local user would meet it: a page on another
origin cannot drive it, and the call log it serves shows no secret. Its high-water mark of calls in
flight, read by concurrency tests instead of sampling."""

import base64
import hashlib
import json
import threading

import requests

from xero_emulator.admin import MASKED

from .helpers import XeroClient
from .test_identity import CALLBACK, authorize, code_from, token_call


def _admin(emulator) -> str:
    return emulator.base_url + "/_emulator"


def test_a_simple_cross_origin_post_cannot_reset_or_fault_the_emulator(emulator, xero):
    # Given a contact in Xero
    xero.create_contact(Name="Kept Customer")

    # When a web page posts what a browser sends cross-origin without a preflight: form fields,
    # text/plain (even holding JSON), or no content type at all
    attempts = [
        requests.post(_admin(emulator) + "/reset", data={"x": "1"}, timeout=5),
        requests.post(_admin(emulator) + "/faults", data=json.dumps({"kind": "503", "count": 5}),
                      headers={"Content-Type": "text/plain"}, timeout=5),
        requests.post(_admin(emulator) + "/faults", files={"kind": ("k", b"503")}, timeout=5),
        requests.post(_admin(emulator) + "/reset", timeout=5),
    ]

    # Then every one is refused, and nothing changed
    assert [attempt.status_code for attempt in attempts] == [415, 415, 415, 415]
    assert "application/json" in attempts[0].json()["error"]
    assert [contact["Name"] for contact in emulator.contacts()] == ["Kept Customer"]
    assert xero.get("/Organisation").status_code == 200


def test_a_json_post_from_a_page_on_another_origin_is_refused(emulator, xero):
    xero.create_contact(Name="Kept Customer")

    for origin in ("http://evil.example", "https://127.0.0.1.evil.example:8765", "null"):
        refused = requests.post(_admin(emulator) + "/reset", json={}, headers={"Origin": origin}, timeout=5)
        assert refused.status_code == 403, origin
    assert len(emulator.contacts()) == 1

    # A local tool (no Origin) and a page the emulator serves itself (a loopback origin) still may
    loopback = requests.post(_admin(emulator) + "/faults/clear", json={},
                             headers={"Origin": emulator.base_url}, timeout=5)
    assert loopback.status_code == 200
    assert requests.post(_admin(emulator) + "/reset", json={}, timeout=5).status_code == 200
    assert emulator.contacts() == []


def test_the_call_log_over_http_shows_no_token_code_verifier_or_secret(emulator):
    # Given a whole sign-in: PKCE authorize, code exchange with a client secret, an API call with the
    # access token, a refresh, and a revocation
    verifier = "verifier-" + "v" * 55
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = code_from(authorize(emulator, code_challenge=challenge, code_challenge_method="S256"))["code"]
    exchanged = token_call(emulator, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier,
        "client_id": "emulator-client", "client_secret": "emulator-secret",
    }, auth=None)
    token = exchanged.json()
    assert exchanged.status_code == 200
    assert XeroClient(emulator, token=token).get("/Organisation").status_code == 200
    refreshed = token_call(emulator, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 200
    revoked = requests.post(emulator.revocation_url, data={"token": refreshed.json()["refresh_token"]},
                            auth=("emulator-client", "emulator-secret"), timeout=5)
    assert revoked.status_code == 200

    # When the call log is read over HTTP
    response = requests.get(_admin(emulator) + "/calls", timeout=5)

    # Then no secret is in it, anywhere
    assert response.status_code == 200
    secrets = {
        "code": code, "code_verifier": verifier, "client_secret": "emulator-secret",
        "access_token": token["access_token"], "refresh_token": token["refresh_token"],
        "id_token": token["id_token"], "refreshed access_token": refreshed.json()["access_token"],
        "refreshed refresh_token": refreshed.json()["refresh_token"],
        "basic credentials": base64.b64encode(b"emulator-client:emulator-secret").decode(),
    }
    leaked = [name for name, secret in secrets.items() if secret in response.text]
    assert leaked == []
    # And the log still says what was sent, with the secrets masked
    calls = response.json()
    exchange = next(call for call in calls if call["path"] == "/connect/token")
    assert exchange["request_json"]["grant_type"] == "authorization_code"
    assert exchange["request_json"]["code"] == exchange["request_json"]["code_verifier"] == MASKED
    assert exchange["response_json"]["access_token"] == MASKED
    assert exchange["response_json"]["expires_in"] == 1800
    api_call = next(call for call in calls if call["path"].startswith("/api.xro/"))
    assert api_call["headers"]["authorization"] == MASKED
    assert api_call["tenant_id"] == emulator.default_tenant_id


def test_the_peak_of_calls_in_flight_is_kept_until_reset(emulator, xero):
    # Given three calls that Xero holds for a moment, all sent at once
    emulator.inject_fault("hang", count=3, seconds=0.5)
    assert emulator.peak_in_flight() == 0

    def held_call():
        # A hang ends with the connection closed unanswered, as a dead load balancer would.
        try:
            requests.get(emulator.api_url + "/Organisation", headers=xero.headers(), timeout=5)
        except requests.ConnectionError:
            pass

    threads = [threading.Thread(target=held_call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the high-water mark remembers three in flight at once, though none is in flight any more
    assert emulator.in_flight() == 0
    assert emulator.peak_in_flight() == 3
    stats = requests.get(_admin(emulator) + "/stats", timeout=5).json()
    assert stats["tenants"][emulator.default_tenant_id] == {"in_flight": 0, "peak_in_flight": 3}
    # And one call at a time afterwards leaves a peak of one, once reset
    reset = requests.post(_admin(emulator) + "/stats/reset", json={}, timeout=5)
    assert reset.json()["tenants"][emulator.default_tenant_id]["peak_in_flight"] == 0
    for _ in range(3):
        assert xero.get("/Organisation").status_code == 200
    assert emulator.peak_in_flight() == 1
    emulator.reset_peak_in_flight()
    assert emulator.peak_in_flight() == 0
