"""Connecting the shop to a Xero organisation, through the real pages, against the running emulator."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection as db
from django.urls import reverse

from xero_sync.models import XeroConnection
from xero_sync.services.connection import connection_current

from .helpers import connect, consent_at_xero

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def test_connecting_a_single_organisation(admin_client, xero_site):
    # when staff press Connect and agree at Xero
    response = connect(admin_client)
    # then they are back on the settings page, connected to the organisation
    assert response.status_code == 302 and response["Location"] == reverse("xero_sync:settings")
    current = connection_current()
    assert current.tenant_name == "Demo Company (NZ)"
    assert str(current.tenant_id) == xero_site.default_tenant_id
    assert current.status == XeroConnection.Status.ACTIVE
    page = admin_client.get(reverse("xero_sync:settings")).content.decode()
    assert "Demo Company (NZ)" in page and xero_site.default_tenant_id in page and "Disconnect" in page
    # and the consent used PKCE, the code grant and the connections list
    authorize = xero_site.calls_to("GET", "/identity/connect/authorize")[0]
    assert authorize["query"]["code_challenge_method"] == "S256"
    (exchange,) = xero_site.calls_to("POST", "/connect/token")
    assert exchange["request_json"]["grant_type"] == "authorization_code"
    assert exchange["request_json"]["code_verifier"]
    assert len(xero_site.calls_to("GET", "/connections")) == 1


def test_choosing_among_several_organisations(admin_client, xero_site):
    # given a Xero user with access to two organisations
    second = xero_site.add_organisation("Second Shop Ltd")
    # when staff connect, they are asked which one
    response = admin_client.get(consent_at_xero(admin_client))
    assert response.status_code == 302 and "/xero/choose/" in response["Location"]
    assert connection_current() is None
    choice_page = admin_client.get(response["Location"]).content.decode()
    assert "Demo Company (NZ)" in choice_page and "Second Shop Ltd" in choice_page
    # and choosing the second connects to it
    chosen = admin_client.post(response["Location"], {"tenant_id": second})
    assert chosen.status_code == 302
    assert (connection_current().tenant_name, str(connection_current().tenant_id)) == ("Second Shop Ltd", second)
    # and the choice cannot be made twice
    assert admin_client.post(response["Location"], {"tenant_id": xero_site.default_tenant_id}).status_code == 404


def test_a_replayed_callback_is_rejected(admin_client, xero_site):
    callback = consent_at_xero(admin_client)
    assert admin_client.get(callback).status_code == 302
    first = connection_current()
    # when the same callback arrives again
    replay = admin_client.get(callback, follow=True)
    # then it is refused and changes nothing
    assert "unknown, expired or already used" in " ".join(messages_of(replay))
    assert XeroConnection.objects.get() == first
    assert len(xero_site.calls_to("POST", "/connect/token")) == 1


def test_a_forged_state_is_rejected_before_any_call_to_xero(admin_client, xero_site):
    callback = consent_at_xero(admin_client)
    forged = callback.replace("state=", "state=forged")
    response = admin_client.get(forged, follow=True)
    assert "unknown, expired or already used" in " ".join(messages_of(response))
    assert admin_client.get("/xero/callback/?code=abc", follow=True).status_code == 200
    assert XeroConnection.objects.count() == 0
    assert xero_site.calls_to("POST", "/connect/token") == []


def test_a_callback_for_another_users_attempt_is_rejected(admin_client, client, django_user_model, xero_site):
    callback = consent_at_xero(admin_client)
    other = django_user_model.objects.create_superuser("other", "other@example.com", "pw")
    client.force_login(other)
    response = client.get(callback, follow=True)
    assert "started by another user" in " ".join(messages_of(response))
    assert XeroConnection.objects.count() == 0


def test_refusing_consent_at_xero_is_reported(admin_client, xero_site):
    callback = consent_at_xero(admin_client)
    state = callback.split("state=")[1].split("&")[0]
    response = admin_client.get(f"/xero/callback/?error=access_denied&state={state}", follow=True)
    assert "Xero did not grant access: access_denied" in " ".join(messages_of(response))
    assert XeroConnection.objects.count() == 0


def test_disconnect_revokes_and_removes_the_connection_at_xero(admin_client, xero_site):
    connect(admin_client)
    connected = connection_current()
    # when staff disconnect
    response = admin_client.post(reverse("xero_sync:disconnect"), follow=True)
    # then Xero removed the connection and revoked the token, and the site forgot the token
    assert "Disconnected from Demo Company (NZ)" in " ".join(messages_of(response))
    assert len(xero_site.calls_to("DELETE", "/connections/")) == 1
    assert len(xero_site.calls_to("POST", "/connect/revocation")) == 1
    connected.refresh_from_db()
    assert connected.status == XeroConnection.Status.DISCONNECTED and not connected.is_current
    assert bytes(connected.token_ciphertext) == b""
    assert connection_current() is None


def test_reconnecting_after_a_disconnect(admin_client, xero_site):
    connect(admin_client)
    admin_client.post(reverse("xero_sync:disconnect"))
    # when staff connect again
    connect(admin_client)
    # then the same organisation is current and active again, as one connection row
    assert XeroConnection.objects.count() == 1
    assert connection_current().status == XeroConnection.Status.ACTIVE


def test_tokens_are_encrypted_at_rest(admin_client, xero_site):
    connect(admin_client)
    tokens = [call["response_json"] for call in xero_site.calls_to("POST", "/connect/token")][0]
    with db.cursor() as cursor:
        cursor.execute("SELECT token_ciphertext FROM xero_sync_xeroconnection")
        (raw,) = cursor.fetchone()
    stored = bytes(raw)
    assert tokens["access_token"].encode() not in stored
    assert tokens["refresh_token"].encode() not in stored
    assert len(stored) > 100


def test_tokens_are_never_rendered(admin_client, xero_site):
    connect(admin_client)
    tokens = xero_site.calls_to("POST", "/connect/token")[0]["response_json"]
    for url in (reverse("xero_sync:settings"), "/admin/"):
        page = admin_client.get(url).content.decode()
        assert tokens["access_token"] not in page and tokens["refresh_token"] not in page


XERO_PAGES = [
    ("get", "xero_sync:settings", {}),
    ("post", "xero_sync:settings", {}),
    ("post", "xero_sync:connect", {}),
    ("get", "xero_sync:callback", {}),
    ("get", "xero_sync:choose_tenant", {"attempt_id": 1}),
    ("post", "xero_sync:disconnect", {}),
    ("post", "xero_sync:chart_refresh", {}),
    ("post", "xero_sync:sync_now", {}),
]


@pytest.mark.parametrize(("method", "name", "kwargs"), XERO_PAGES)
def test_non_staff_never_reach_a_xero_page(client, django_user_model, method, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    # anonymous
    assert getattr(client, method)(url).status_code == 302
    # a logged-in customer account
    client.force_login(django_user_model.objects.create_user("customer", password="pw"))
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(("method", "name", "kwargs"), XERO_PAGES)
def test_staff_need_the_manage_xero_permission(client, django_user_model, method, name, kwargs):
    staff = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(staff)
    assert getattr(client, method)(reverse(name, kwargs=kwargs)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="manage_xero"))
    staff = django_user_model.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.get(reverse("xero_sync:settings")).status_code == 200


def test_the_settings_page_is_csrf_protected(django_user_model, xero_site):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.create_superuser("boss", "b@example.com", "pw"))
    assert strict.post(reverse("xero_sync:connect")).status_code == 403
    assert strict.post(reverse("xero_sync:settings"), {"section": "sync"}).status_code == 403


def test_every_page_says_when_xero_is_the_emulator(admin_client, settings):
    settings.XERO_USING_EMULATOR = True
    assert "built-in Xero emulator" in admin_client.get("/admin/").content.decode()
    settings.XERO_USING_EMULATOR = False
    assert "built-in Xero emulator" not in admin_client.get("/admin/").content.decode()
