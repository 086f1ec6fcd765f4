"""The design's rules, checked. The import contracts live in pyproject.toml ([tool.importlinter]) and run
in CI as `lint-imports`; the rule that no database transaction is held across a Xero call is enforced by
the gateway itself and tested here, inside and outside pytest-django's own test transaction."""

import pytest
from django.db import transaction

from xero_sync import client
from xero_sync.services.connection import connection_gateway


def _refused_inside_atomic(connection, emulator) -> None:
    gateway = connection_gateway(connection)
    with transaction.atomic():
        with pytest.raises(client.XeroCallInsideTransaction, match="get_organisations"):
            gateway.call("get_organisations")
        with pytest.raises(client.XeroCallInsideTransaction, match="refresh_token"):
            client.refresh_token(refresh_token_value="never-sent")
        with pytest.raises(client.XeroCallInsideTransaction, match="/connections"):
            client.list_connections(access_token="never-sent")
    assert emulator.calls == [], "a refused call must not reach Xero"
    # The same calls outside any transaction of ours go through.
    assert gateway.call("get_organisations")["Organisations"]
    assert [call["path"] for call in emulator.calls] == ["/api.xro/2.0/Organisation"]


def test_a_xero_call_inside_atomic_fails_inside_the_test_transaction(xero_connected, xero_site):
    _refused_inside_atomic(xero_connected, xero_site)


@pytest.mark.django_db(transaction=True)
def test_a_xero_call_inside_atomic_fails_without_a_test_transaction(xero_connected, xero_site):
    _refused_inside_atomic(xero_connected, xero_site)


def test_nested_blocks_are_refused_too(xero_connected, xero_site):
    gateway = connection_gateway(xero_connected)
    with transaction.atomic(), transaction.atomic(savepoint=False):
        with pytest.raises(client.XeroCallInsideTransaction):
            gateway.call("get_organisations")
    assert xero_site.calls == []


def test_the_refusal_is_not_a_xero_failure_that_a_service_would_retry():
    from xero_sync.errors import XeroError

    assert not issubclass(client.XeroCallInsideTransaction, XeroError)
