"""Identity: consent, token endpoint (rotation, grace period, invalid_grant), revocation, connections,
and the bearer/tenant checks in front of the Accounting API (docs/xero-api.md §9)."""

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import requests

from .helpers import XeroClient

CALLBACK = "http://localhost:8000/xero/callback"
SCOPE = "openid profile email offline_access accounting.contacts accounting.invoices accounting.settings.read"


def authorize(emulator, *, client_id="emulator-client", redirect_uri=CALLBACK, **extra) -> requests.Response:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPE}
    params.update(extra)
    return requests.get(emulator.authorize_url, params=params, allow_redirects=False, timeout=5)


def code_from(response: requests.Response) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def token_call(emulator, form: dict, auth=("emulator-client", "emulator-secret")) -> requests.Response:
    return requests.post(emulator.token_url, data=form, auth=auth, timeout=5)


def refresh(emulator, refresh_token: str) -> requests.Response:
    return token_call(emulator, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def test_authorize_consents_and_redirects_with_code_and_state_then_code_exchanges_once(emulator):
    # Given the default app and a loopback redirect URI
    # When the user is sent to the authorize URL
    response = authorize(emulator, state="csrf-123")

    # Then consent is automatic: a 302 back to the redirect URI with a code and the state
    assert response.status_code == 302
    assert response.headers["Location"].startswith(CALLBACK + "?")
    answer = code_from(response)
    assert answer["state"] == "csrf-123" and answer["code"]

    # When the code is exchanged (client authenticated by HTTP Basic)
    form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": CALLBACK}
    exchanged = token_call(emulator, form)

    # Then Xero's token response comes back
    assert exchanged.status_code == 200
    token = exchanged.json()
    assert token["expires_in"] == 1800 and token["token_type"] == "Bearer"
    assert token["scope"] == SCOPE
    assert token["access_token"].count(".") == 2  # JWT-shaped
    assert token["refresh_token"] and token["id_token"]

    # And a code works once only
    again = token_call(emulator, form)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_token_endpoint_accepts_client_secret_post_and_refuses_a_wrong_secret(emulator):
    code = code_from(authorize(emulator))["code"]
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}

    wrong = token_call(emulator, {**base, "client_id": "emulator-client", "client_secret": "nope"}, auth=None)
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})

    right = token_call(
        emulator, {**base, "client_id": "emulator-client", "client_secret": "emulator-secret"}, auth=None
    )
    assert right.status_code == 200


def test_authorization_code_with_a_different_redirect_uri_is_invalid_grant(emulator):
    code = code_from(authorize(emulator))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost:9999/other"}
    assert token_call(emulator, form).json() == {"error": "invalid_grant"}


def test_pkce_code_needs_the_matching_verifier_and_then_no_secret(emulator):
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

    # Given a code requested with an S256 challenge
    code = code_from(authorize(emulator, code_challenge=challenge, code_challenge_method="S256"))["code"]
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "emulator-client",
    }

    # When the wrong verifier is sent, the code is spent and refused
    assert token_call(emulator, {**base, "code_verifier": "x" * 64}, auth=None).json() == {
        "error": "invalid_grant"
    }

    # When a fresh code is exchanged with the right verifier and no client secret (a public client)
    code = code_from(authorize(emulator, code_challenge=challenge, code_challenge_method="S256"))["code"]
    response = token_call(emulator, {**base, "code": code, "code_verifier": verifier}, auth=None)

    # Then tokens are issued, and the refresh works without a secret too
    assert response.status_code == 200
    form = {
        "grant_type": "refresh_token",
        "refresh_token": response.json()["refresh_token"],
        "client_id": "emulator-client",
    }
    assert token_call(emulator, form, auth=None).status_code == 200


def test_redirect_uri_must_be_registered_and_the_default_app_takes_loopback_only(emulator):
    emulator.register_app("shop", "shop-secret", ["https://shop.example/xero/callback"])

    wrong = authorize(emulator, client_id="shop", redirect_uri="https://evil.example/callback")
    assert wrong.status_code == 400 and "Invalid redirect_uri" in wrong.text

    right = authorize(emulator, client_id="shop", redirect_uri="https://shop.example/xero/callback")
    assert right.status_code == 302

    assert authorize(emulator, redirect_uri="https://shop.example/xero/callback").status_code == 400
    assert authorize(emulator, redirect_uri="http://127.0.0.1:8123/cb").status_code == 302
    assert authorize(emulator, client_id="unknown").status_code == 400


def test_refresh_rotates_the_token_and_the_previous_one_works_for_30_minutes_then_invalid_grant(emulator):
    # Given a token pair
    first = emulator.issue_token()

    # When it is refreshed
    rotated = refresh(emulator, first["refresh_token"])

    # Then a new pair comes back
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    # And the replaced refresh token still works within the grace period (a lost response can be retried)
    retried = refresh(emulator, first["refresh_token"])
    assert retried.status_code == 200
    third = retried.json()

    # But after 30 minutes the replaced tokens are dead, the newest one lives
    emulator.clock.advance(1801)
    assert refresh(emulator, first["refresh_token"]).json() == {"error": "invalid_grant"}
    assert refresh(emulator, second["refresh_token"]).json() == {"error": "invalid_grant"}
    assert refresh(emulator, third["refresh_token"]).status_code == 200


def test_unknown_refresh_token_and_unsupported_grant_type(emulator):
    assert refresh(emulator, "not-a-token").json() == {"error": "invalid_grant"}
    response = token_call(emulator, {"grant_type": "password"})
    assert (response.status_code, response.json()) == (400, {"error": "unsupported_grant_type"})


def test_access_token_expires_after_30_minutes_with_xeros_401_body(emulator, xero):
    assert xero.get("/Organisation").status_code == 200

    emulator.clock.advance(1801)
    response = xero.get("/Organisation")

    assert response.status_code == 401
    problem = response.json()
    assert problem["Type"] is None
    assert (problem["Title"], problem["Status"], problem["Detail"]) == (
        "Unauthorized",
        401,
        "AuthenticationUnsuccessful",
    )


def test_missing_or_unknown_bearer_token_is_401(emulator):
    url = emulator.api_url + "/Contacts"
    headers = {"xero-tenant-id": emulator.default_tenant_id}
    assert requests.get(url, headers=headers, timeout=5).status_code == 401
    assert (
        requests.get(url, headers={**headers, "Authorization": "Bearer forged"}, timeout=5).status_code == 401
    )


def test_revocation_kills_the_refresh_token_and_its_access_tokens(emulator):
    token = emulator.issue_token()
    client = XeroClient(emulator, token=token)

    response = requests.post(
        emulator.revocation_url,
        data={"token": token["refresh_token"]},
        auth=("emulator-client", "emulator-secret"),
        timeout=5,
    )

    assert response.status_code == 200
    assert refresh(emulator, token["refresh_token"]).json() == {"error": "invalid_grant"}
    assert client.get("/Contacts").status_code == 401


def test_handle_can_revoke_a_refresh_token(emulator):
    token = emulator.issue_token()
    emulator.revoke_refresh_token(token["refresh_token"])
    assert refresh(emulator, token["refresh_token"]).json() == {"error": "invalid_grant"}


def test_connections_list_the_consented_organisations_and_filter_by_auth_event(emulator):
    # Given a second organisation that the next consent does not grant
    other = emulator.add_organisation("Second Shop Ltd")
    emulator.authorize_grants_tenants([emulator.default_tenant_id])
    code = code_from(authorize(emulator))["code"]
    token = token_call(
        emulator, {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    ).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    # When the connections are listed
    connections = requests.get(emulator.connections_url, headers=bearer, timeout=5).json()

    # Then only the granted organisation is there, in Xero's shape
    assert len(connections) == 1
    connection = connections[0]
    assert set(connection) == {
        "id",
        "authEventId",
        "tenantId",
        "tenantType",
        "tenantName",
        "createdDateUtc",
        "updatedDateUtc",
    }
    assert connection["tenantId"] == emulator.default_tenant_id != other
    assert (connection["tenantType"], connection["tenantName"]) == ("ORGANISATION", "Demo Company (NZ)")

    # And ?authEventId= filters
    same = requests.get(
        emulator.connections_url, params={"authEventId": connection["authEventId"]}, headers=bearer, timeout=5
    )
    assert len(same.json()) == 1
    none = requests.get(emulator.connections_url, params={"authEventId": "0" * 32}, headers=bearer, timeout=5)
    assert none.json() == []


def test_deleting_a_connection_cuts_the_tokens_access_to_that_tenant(emulator, xero):
    bearer = {"Authorization": f"Bearer {xero.token['access_token']}"}
    connection = requests.get(emulator.connections_url, headers=bearer, timeout=5).json()[0]

    deleted = requests.delete(f"{emulator.connections_url}/{connection['id']}", headers=bearer, timeout=5)

    assert deleted.status_code == 204
    forbidden = xero.get("/Contacts")
    assert forbidden.status_code == 403
    assert (forbidden.json()["Title"], forbidden.json()["Detail"]) == (
        "Forbidden",
        "AuthorizationUnsuccessful",
    )
    assert requests.get(emulator.connections_url, headers=bearer, timeout=5).json() == []


def test_tenant_header_must_name_an_organisation_this_token_reaches(emulator):
    other = emulator.add_organisation("Not Granted Ltd")
    token = emulator.issue_token(tenant_ids=[emulator.default_tenant_id])

    assert XeroClient(emulator, token=token).get("/Organisation").status_code == 200
    assert XeroClient(emulator, token=token, tenant_id=other).get("/Organisation").status_code == 403
    unknown = XeroClient(emulator, token=token, tenant_id="00000000-0000-0000-0000-000000000000")
    assert unknown.get("/Organisation").status_code == 403
    missing = requests.get(
        emulator.api_url + "/Organisation",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    )
    assert missing.status_code == 403
    assert missing.json()["Detail"] == "AuthorizationUnsuccessful"


def test_disconnecting_from_xeros_side_forbids_the_tenant(emulator, xero):
    emulator.disconnect_tenant(emulator.default_tenant_id)
    assert xero.get("/Contacts").status_code == 403


def test_identity_calls_are_recorded_and_not_rate_limited(emulator):
    emulator.set_limits(per_minute=1)
    token = emulator.issue_token()

    for _ in range(3):
        response = refresh(emulator, token["refresh_token"])
        assert response.status_code == 200
        assert "X-MinLimit-Remaining" not in response.headers
        token = response.json()

    calls = emulator.calls_to("POST", "/connect/token")
    assert len(calls) == 3
    assert calls[0]["request_json"]["grant_type"] == "refresh_token"
    assert calls[0]["headers"]["authorization"] == "Basic [redacted]"


def test_accounting_call_log_redacts_the_bearer_token(emulator, xero):
    xero.get("/Organisation")
    call = emulator.calls_to("GET", "/Organisation")[0]
    assert call["headers"]["authorization"] == "Bearer [redacted]"
    assert call["tenant_id"] == emulator.default_tenant_id and call["status"] == 200


def test_requests_oauthlib_completes_the_pkce_flow_and_refreshes(emulator, monkeypatch):
    # The web app's connect flow: requests-oauthlib over plain HTTP to the loopback emulator
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    from requests_oauthlib import OAuth2Session

    session = OAuth2Session(
        "emulator-client", redirect_uri=CALLBACK, scope=["offline_access", "accounting.contacts"], pkce="S256"
    )
    url, _ = session.authorization_url(emulator.authorize_url)
    callback = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]

    token = session.fetch_token(
        emulator.token_url, client_secret="emulator-secret", authorization_response=callback
    )

    assert token["scope"] == ["offline_access", "accounting.contacts"] and token["expires_in"] == 1800
    assert (
        session.get(emulator.connections_url, timeout=5).json()[0]["tenantId"] == emulator.default_tenant_id
    )
    refreshed = session.refresh_token(emulator.token_url, auth=("emulator-client", "emulator-secret"))
    assert refreshed["refresh_token"] != token["refresh_token"]
