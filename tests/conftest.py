import pytest
from django.conf import settings

from tests.support import need


def _redis_answers() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        from django.db import connection

        need(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis"):
        need(_redis_answers(), "needs Redis: set REDIS_URL=redis://... to a running server")


def xero_contract_violations(calls: list[dict], *, check_requests: bool) -> list[str]:
    """Every Accounting API body in `calls` checked against Xero's official spec.

    Under CI the spec must be there; elsewhere, without it, nothing is checked (the contract tests
    themselves say they skipped)."""
    from tests.support import XERO_SPEC_PATH
    from tests.xero_contract import XeroContract

    if not XERO_SPEC_PATH.exists():
        need(False, f"the Xero spec is missing at {XERO_SPEC_PATH}")
    contract = XeroContract.load(XERO_SPEC_PATH)
    problems = []
    for call in calls:
        if check_requests:
            problems += contract.errors_for_call(call)
        elif contract.operation_for(call["method"], call["path"]):
            # The emulator's own tests send bad requests and unknown paths on purpose; its answers to
            # Xero's real operations must still be Xero's shape.
            problems += contract.errors_for_call({**call, "request_json": None})
    return problems


@pytest.fixture
def xero_emulator():
    """A live Xero emulator on loopback. Every body our code sent it, and every body it answered, must
    match Xero's official spec: a violation fails the test."""
    from xero_emulator.testing import running_emulator

    with running_emulator() as emulator:
        yield emulator
        problems = xero_contract_violations(emulator.calls, check_requests=True)
    assert not problems, "Xero contract violations:\n" + "\n".join(problems[:20])


@pytest.fixture
def xero_site(xero_emulator, settings):
    """The site's Xero settings pointed at the test's emulator."""
    # An app registered with exactly our callback, as an operator registers it at developer.xero.com.
    xero_emulator.register_app("shop-test-client", "shop-test-secret", ["http://testserver/xero/callback/"])
    settings.XERO_USING_EMULATOR = True
    settings.XERO_CLIENT_ID = "shop-test-client"
    settings.XERO_CLIENT_SECRET = "shop-test-secret"
    settings.XERO_AUTHORIZE_URL = xero_emulator.authorize_url
    settings.XERO_TOKEN_URL = xero_emulator.token_url
    settings.XERO_REVOKE_URL = xero_emulator.revocation_url
    settings.XERO_CONNECTIONS_URL = xero_emulator.connections_url
    settings.XERO_API_URL = xero_emulator.api_url
    settings.XERO_REDIRECT_URI = "http://testserver/xero/callback/"
    settings.XERO_HTTP_TIMEOUT = 5
    return xero_emulator


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                      "live_server"}


@pytest.fixture(autouse=True)
def _gateway_tolerates_the_test_transaction(request):
    """The Xero gateway refuses to call inside an open transaction. pytest-django wraps a test that uses
    the database in an atomic block of its own (none for transactional_db or django_db(transaction=True));
    it is open before the test starts, so count what is open then, and only blocks the code under test
    opens refuse a call. (Django's unittest-style TestCase classes, which open theirs inside the test
    call, are not used here.)"""
    if request.node.get_closest_marker("django_db") or _DATABASE_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")  # open the test's own blocks before we count them
    from django.db import connection

    from xero_sync import client

    with client.tolerating_enclosing_atomic_blocks(len(connection.atomic_blocks)):
        yield


@pytest.fixture(autouse=True)
def _no_nudges(settings):
    """Tests decide when a sync runs; a nudge would only queue a message on a broker nobody reads."""
    settings.XERO_SYNC_NUDGE = False


@pytest.fixture
def xero_connected(xero_site, db):
    """The shop connected to the emulator's Demo Company and configured as a shop owner would:
    sales to 200, shipping to 205, GST -> OUTPUT2, ZERO -> ZERORATEDOUTPUT, card receipts pushed to 620."""
    from ecommerce.models import PaymentMethod
    from xero_sync import client
    from xero_sync.services import configuration
    from xero_sync.services.connection import _connection_activate

    token = client.normalise_token(xero_site.issue_token(client_id="shop-test-client"))
    connection = _connection_activate(
        tenant={"tenantId": xero_site.default_tenant_id, "tenantName": "Demo Company (NZ)"}, token=token, user=None)
    configuration.chart_refresh(connection=connection)
    configuration.sync_settings_update(default_sales_account_code="200", shipping_account_code="205")
    configuration.tax_mapping_set(tax_code="GST", xero_tax_type="OUTPUT2")
    configuration.tax_mapping_set(tax_code="ZERO", xero_tax_type="ZERORATEDOUTPUT")
    card = PaymentMethod.objects.get_or_create(code="card", defaults={"name": "Card"})[0]
    configuration.payment_method_configure(payment_method=card, direction="push", account_code="620")
    xero_site.reset_calls()
    connection.refresh_from_db()
    return connection
