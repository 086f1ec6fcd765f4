"""The Xero settings page and `manage.py xero_sync configure`: the same choices, the same checks."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from ecommerce import services
from xero_sync.models import PaymentMethodConfig, SyncSettings, TaxMapping
from xero_sync.services.configuration import sync_settings
from xero_sync.services.connection import connection_current

from .helpers import connect

pytestmark = pytest.mark.django_db
SETTINGS_URL = reverse("xero_sync:settings")


@pytest.fixture
def card():
    return services.payment_method_create(name="Card", code="card")


@pytest.fixture
def connected(admin_client, xero_site):
    """Connected to the emulator's Demo Company, with its accounts and tax rates fetched."""
    connect(admin_client)
    response = admin_client.post(reverse("xero_sync:chart_refresh"), follow=True)
    assert "Fetched" in response.content.decode()
    return connection_current()


def save(client, section: str, data: dict):
    return client.post(SETTINGS_URL, {"section": section, **data})


def page_text(response) -> str:
    return response.content.decode()


def test_the_chart_comes_from_the_organisation_in_two_calls(connected, xero_site):
    assert [call["path"] for call in xero_site.calls if "/api.xro/" in call["path"]] == [
        "/api.xro/2.0/Accounts", "/api.xro/2.0/TaxRates"]
    codes = {account["Code"] for account in connected.accounts_cache}
    assert {"090", "200", "620"} <= codes
    assert "OUTPUT2" in {rate["TaxType"] for rate in connected.tax_rates_cache}


def test_a_push_method_needs_an_account(admin_client, card):
    response = save(admin_client, "payment_methods", {f"method-{card.pk}-direction": "push",
                                                      f"method-{card.pk}-xero_account_code": ""})
    assert response.status_code == 200
    assert "Card is set to push: choose the Xero bank or clearing account" in page_text(response)
    assert not PaymentMethodConfig.objects.exists()


def test_payment_accounts_are_the_organisations_bank_and_payment_enabled_ones(admin_client, connected, card):
    # the dropdown offers bank and payment-enabled accounts only
    page = page_text(admin_client.get(SETTINGS_URL))
    assert '<option value="090">' in page and '<option value="620">' in page
    # a revenue account is not one of them: refused with the choices
    response = save(admin_client, "payment_methods", {f"method-{card.pk}-direction": "push",
                                                      f"method-{card.pk}-xero_account_code": "200"})
    assert response.status_code == 200
    assert "Select a valid choice. 200 is not one of the available choices." in page_text(response)
    # a card clearing account is accepted
    response = save(admin_client, "payment_methods", {f"method-{card.pk}-direction": "push",
                                                      f"method-{card.pk}-xero_account_code": "620"})
    assert response.status_code == 302
    config = PaymentMethodConfig.objects.get(payment_method=card)
    assert (config.direction, config.xero_account_code) == ("push", "620")


def test_an_account_code_the_organisation_lacks_is_refused_by_the_service(connected, card):
    from django.core.exceptions import ValidationError

    from xero_sync.services.configuration import payment_method_configure

    with pytest.raises(ValidationError, match="Demo Company \\(NZ\\) has no bank or payment-enabled account '999'"):
        payment_method_configure(payment_method=card, direction="pull", account_code="999")


def test_sync_settings_are_saved_and_checked(admin_client, connected):
    base = {"debounce_seconds": "120", "max_wait_seconds": "600", "default_sales_account_code": "200",
            "shipping_account_code": "205"}
    # auto-sync off
    assert save(admin_client, "sync", base).status_code == 302
    assert sync_settings().auto_sync is False
    # and on again
    assert save(admin_client, "sync", {**base, "auto_sync": "on"}).status_code == 302
    current = sync_settings()
    assert (current.auto_sync, current.default_sales_account_code, current.shipping_account_code) == (
        True, "200", "205")
    # a cap shorter than the quiet period is refused
    response = save(admin_client, "sync", {**base, "max_wait_seconds": "60"})
    assert "The longest wait cannot be shorter than the quiet period." in page_text(response)
    # a quiet period of 2 seconds is refused
    response = save(admin_client, "sync", {**base, "debounce_seconds": "2"})
    assert "The quiet period must be between 10 and 3600 seconds." in page_text(response)
    # a bank account is not a sales account
    response = save(admin_client, "sync", {**base, "default_sales_account_code": "090"})
    assert "Select a valid choice." in page_text(response)
    assert SyncSettings.objects.get().max_wait_seconds == 600


def test_tax_codes_map_to_the_organisations_tax_types(admin_client, connected):
    contact = services.contact_create(first_name="Mia", last_name="Chen")
    services.sale_create(contact=contact, lines=[
        {"description": "Beanie", "unit_amount": 10, "tax_rate": 15, "tax_code": "GST"}])
    page = page_text(admin_client.get(SETTINGS_URL))
    assert "GST" in page and '<option value="OUTPUT2">' in page
    assert save(admin_client, "tax", {"tax-0-tax_code": "GST", "tax-0-xero_tax_type": "OUTPUT2"}).status_code == 302
    assert TaxMapping.objects.get(tax_code="GST").xero_tax_type == "OUTPUT2"
    response = save(admin_client, "tax", {"tax-0-tax_code": "GST", "tax-0-xero_tax_type": "INPUT2"})
    assert "Select a valid choice." in page_text(response)  # an expense tax type is not offered for sales


def test_before_connecting_codes_are_free_text_and_accepted(admin_client, card):
    response = save(admin_client, "payment_methods", {f"method-{card.pk}-direction": "pull",
                                                      f"method-{card.pk}-xero_account_code": "090"})
    assert response.status_code == 302
    assert PaymentMethodConfig.objects.get().xero_account_code == "090"


@pytest.mark.postgres
@pytest.mark.parametrize(("field", "message"), [
    ("max_wait_seconds", "The longest wait can be at most 86400 seconds (a day)."),
    ("debounce_seconds", "The quiet period must be between 10 and 3600 seconds."),
])
def test_a_huge_wait_is_a_form_error_not_a_database_error(admin_client, field, message):
    # 10**12 overflows PostgreSQL's integer column: today a DataError and a 500
    base = {"debounce_seconds": "120", "max_wait_seconds": "600"}
    response = save(admin_client, "sync", {**base, field: str(10**12)})
    assert response.status_code == 200
    assert message in page_text(response)
    assert getattr(sync_settings(), field) == int(base[field])


def test_the_service_bounds_the_longest_wait_too(db):
    from django.core.exceptions import ValidationError

    from xero_sync.services.configuration import sync_settings_update

    with pytest.raises(ValidationError, match="at most 86400 seconds"):
        sync_settings_update(max_wait_seconds=86401)
    assert sync_settings_update(max_wait_seconds=86400).max_wait_seconds == 86400


def test_the_command_line_configures_with_the_same_checks(connected, card):
    out = StringIO()
    call_command("xero_sync", "configure", "--payment-method", "card", "--direction", "push", "--account", "620",
                 "--auto-sync", "off", "--quiet-period", "90", "--tax", "GST=OUTPUT2", stdout=out)
    assert "Payment method card: push via 620" in out.getvalue()
    assert "Auto-sync: off; quiet period 90s" in out.getvalue()
    assert TaxMapping.objects.get().xero_tax_type == "OUTPUT2"
    with pytest.raises(CommandError, match="has no bank or payment-enabled account '200'"):
        call_command("xero_sync", "configure", "--payment-method", "card", "--direction", "push", "--account", "200")
    with pytest.raises(CommandError, match="choose the Xero bank or clearing account"):
        call_command("xero_sync", "configure", "--payment-method", "card", "--direction", "pull")
    with pytest.raises(CommandError, match="No payment method with code 'cheque'. Known: card."):
        call_command("xero_sync", "configure", "--payment-method", "cheque", "--direction", "none")
    with pytest.raises(CommandError, match="has no tax type 'BOGUS'"):
        call_command("xero_sync", "configure", "--tax", "GST=BOGUS")
    assert PaymentMethodConfig.objects.get().xero_account_code == "620"


def test_connect_command_reports_the_current_connection(connected):
    out = StringIO()
    call_command("xero_sync", "connect", stdout=out)
    assert "Connected to Demo Company (NZ) (Connected)" in out.getvalue()


def test_connect_command_prints_the_url_and_waits_for_the_callback(xero_site):
    out = StringIO()
    with pytest.raises(CommandError, match="No callback from Xero within 1 seconds."):
        call_command("xero_sync", "connect", "--wait", "1", stdout=out)
    assert xero_site.authorize_url + "?response_type=code" in out.getvalue()


# --- The pause, told as it stands (issue 15 item 1) -------------------------------------------------------


def test_the_page_says_paused_until_when_while_paused_and_that_it_is_over_once_its_time_has_passed(
        admin_client, connected):
    import datetime

    from django.utils import timezone

    from xero_sync.models import XeroConnection

    until = timezone.now() + datetime.timedelta(hours=1)
    XeroConnection.objects.filter(pk=connected.pk).update(
        paused_until=until, pause_reason="Xero's daily call limit for this organisation is reached.")
    text = page_text(admin_client.get(SETTINGS_URL))
    assert f"Paused by Xero&#x27;s call limit until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}" in text

    # when its time has passed (no run yet): not "Paused until <a past time>"
    XeroConnection.objects.filter(pk=connected.pk).update(paused_until=until - datetime.timedelta(hours=2))
    text = page_text(admin_client.get(SETTINGS_URL))
    assert "Paused by" not in text and "Paused until" not in text
    assert "ended at" in text and "the next run resumes the sync" in text


def test_a_token_key_pause_is_not_shown_as_xeros_limit(admin_client, connected):
    import datetime

    from django.utils import timezone

    from xero_sync.models import XeroConnection
    from xero_sync.services.connection import TOKEN_KEY_PROBLEM

    XeroConnection.objects.filter(pk=connected.pk).update(
        paused_until=timezone.now() + datetime.timedelta(seconds=60), pause_reason=f"{TOKEN_KEY_PROBLEM}: bad key")
    text = page_text(admin_client.get(SETTINGS_URL))
    assert "Paused by an unreadable token key (XERO_TOKEN_KEY) until" in text
    assert "Paused by Xero&#x27;s call limit" not in text


def the_whole_page(card_pk: int, **changes) -> dict:
    """What the settings page sends, every section of its one form, whichever Save button is pressed."""
    return {"section": "tax", "debounce_seconds": "120", "max_wait_seconds": "600",
            "default_sales_account_code": "200", "shipping_account_code": "",
            f"method-{card_pk}-direction": "push", f"method-{card_pk}-xero_account_code": "620",
            "tax-0-tax_code": "GST", "tax-0-xero_tax_type": "OUTPUT2", **changes}


def test_pressing_the_last_sections_button_saves_every_section_of_the_page(admin_client, connected, card):
    services.sale_create(contact=services.contact_create(first_name="Mia"), confirm=True, lines=[
        {"description": "Beanie", "unit_amount": 10, "tax_rate": 15, "tax_code": "GST"}])

    response = admin_client.post(SETTINGS_URL, the_whole_page(card.pk), follow=True)

    assert "Saved: sync settings, payment methods and tax mapping." in page_text(response)
    assert sync_settings().default_sales_account_code == "200"
    config = PaymentMethodConfig.objects.get(payment_method=card)
    assert (config.direction, config.xero_account_code) == ("push", "620")
    assert TaxMapping.objects.get(tax_code="GST").xero_tax_type == "OUTPUT2"


def test_one_wrong_entry_saves_nothing_and_keeps_every_other_entry_on_the_page(admin_client, connected, card):
    services.sale_create(contact=services.contact_create(first_name="Mia"), confirm=True, lines=[
        {"description": "Beanie", "unit_amount": 10, "tax_rate": 15, "tax_code": "GST"}])

    response = admin_client.post(SETTINGS_URL, the_whole_page(card.pk, max_wait_seconds="60"))

    page = page_text(response)
    assert response.status_code == 200
    assert "Nothing was saved" in page and "The longest wait cannot be shorter than the quiet period." in page
    assert '<option value="620" selected>' in page and '<option value="OUTPUT2" selected>' in page
    assert not PaymentMethodConfig.objects.exists() and not TaxMapping.objects.filter(tax_code="GST").exists()
    assert sync_settings().default_sales_account_code == ""


def test_a_method_nobody_chose_for_stays_undecided_when_the_page_is_saved(admin_client, connected, card):
    eftpos = services.payment_method_create(name="EFTPOS", code="eftpos")
    data = the_whole_page(card.pk, **{f"method-{eftpos.pk}-direction": "", f"method-{eftpos.pk}-xero_account_code": ""})

    assert admin_client.post(SETTINGS_URL, data).status_code == 302

    assert not PaymentMethodConfig.objects.filter(payment_method=eftpos).exists()
    assert "Choose push, pull or neither for EFTPOS" in page_text(admin_client.get(SETTINGS_URL))


def test_the_blank_tax_code_is_in_the_mapping_table_and_can_be_mapped(admin_client, connected):
    services.sale_create(contact=services.contact_create(first_name="Mia"), confirm=True, lines=[
        {"description": "Beanie", "unit_amount": 10, "tax_rate": 15, "tax_code": ""}])
    page = page_text(admin_client.get(SETTINGS_URL))
    assert "<em>no tax code</em>" in page and "Used on confirmed sales and not mapped yet" in page
    assert "Map no tax code to a Xero tax type." in page  # the setup checklist says the same

    assert save(admin_client, "tax", {"tax-0-tax_code": "", "tax-0-xero_tax_type": "OUTPUT2"}).status_code == 302
    assert TaxMapping.objects.get(tax_code="").xero_tax_type == "OUTPUT2"
    assert "Used on confirmed sales and not mapped yet" not in page_text(admin_client.get(SETTINGS_URL))


def test_the_page_shows_the_setup_checklist_and_links_the_books_check(admin_client, connected):
    page = page_text(admin_client.get(SETTINGS_URL))
    assert 'id="xero-setup"' in page and "Connected to Demo Company (NZ)" in page
    assert reverse("xero_sync:books_check") in page


def test_runs_count_in_words_and_an_empty_chart_says_none(admin_client, connected):
    from django.utils import timezone

    from xero_sync.models import SyncRun

    SyncRun.objects.create(tenant_id=connected.tenant_id, trigger=SyncRun.Trigger.MANUAL, status=SyncRun.Status.DONE,
                           started_at=timezone.now(), pushed={"contact": 33, "sale": 1}, failed={})
    page = page_text(admin_client.get(SETTINGS_URL))
    assert "33 contacts, 1 sale" in page
    assert "Errors per day, last 30 days (none)" in page and "(peak 1)" not in page
