"""A bookkeeper's day with the Xero sync, in a real browser: settings, a sale made in the admin and sent to
Xero, a record Xero refuses, the dashboard. And a customer-facing user who sees none of it.

What is asserted is what a person sees on the page. Xero is the in-process emulator; its "open in Xero"
pages are real pages the browser follows.
"""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from ecommerce import services
from ecommerce.models import Sale
from xero_sync.models import XeroLink

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

WORDS_999 = "Account code '999' is not a valid code for this document."


def text(page) -> str:
    return page.inner_text("body")


def flash(page) -> str:
    """The messages the last action left (not the standing emulator banner)."""
    return "\n".join(page.locator("ul.messagelist:not(.xero-banner) li").all_inner_texts())


def submit(page, target) -> None:
    """Click what submits a form or follows a link, and wait for the page it leads to."""
    with page.expect_navigation():
        (page.locator(target) if isinstance(target, str) else target).click()


def sale_row(page, number: str):
    return page.locator("#result_list tbody tr", has_text=number)


def send_to_xero_now(page, number: str) -> None:
    page.goto("/admin/ecommerce/sale/")
    sale_row(page, number).locator("input.action-select").check()
    page.select_option("select[name=action]", label="Send to Xero now")
    submit(page, "#changelist-form button[name=index]")
    page.wait_for_load_state()


def xero_filter(page, label: str) -> None:
    submit(page, page.locator('#changelist-filter details[data-filter-title="Xero"] a',
                              has_text=re.compile(f"^{label}$")))


def make_a_sale_in_the_admin(page, shot) -> str:
    """A new customer and a confirmed sale with two lines, through the admin's own forms; the sale number."""
    page.goto("/admin/ecommerce/contact/add/")
    page.fill("#id_first_name", "Aroha")
    page.fill("#id_last_name", "Walker")
    page.fill("#id_email", "aroha@example.com")
    shot(page, "new-contact")
    submit(page, "input[name=_save]")
    assert "was added successfully" in flash(page)

    page.goto("/admin/ecommerce/sale/add/")
    page.click("#sale_form .field-contact .select2-selection")  # the contact autocomplete
    page.fill(".select2-search__field", "Walker")
    page.locator(".select2-results__option", has_text="Aroha Walker").click()
    page.select_option("#id_status", "confirmed")
    page.fill("#id_lines-0-description", "Merino beanie")
    page.fill("#id_lines-0-quantity", "2")
    page.fill("#id_lines-0-unit_amount", "39.95")
    page.fill("#id_lines-0-tax_rate", "15")
    page.fill("#id_lines-0-tax_code", "GST")
    page.locator("#lines-group .add-row a").click()  # a second line: shipping
    page.select_option("#id_lines-1-kind", "shipping")
    page.fill("#id_lines-1-description", "Courier")
    page.fill("#id_lines-1-unit_amount", "9.50")
    page.fill("#id_lines-1-tax_rate", "15")
    page.fill("#id_lines-1-tax_code", "GST")
    shot(page, "new-sale")
    submit(page, "input[name=_save]")
    added = re.search(r"The sale “(S-\d+)” was added successfully", flash(page))
    assert added, text(page)[:1000]
    return added.group(1)


# --- The journey --------------------------------------------------------------------------------------


def test_staff_switch_auto_sync_off_and_on_and_set_up_a_payment_method(browser_page, xero_connected, screenshots):
    page, shot = browser_page, screenshots
    eftpos = services.payment_method_create(name="EFTPOS", code="eftpos")

    # auto-sync off
    page.goto("/xero/settings/")
    assert "Demo Company (NZ): Connected" in page.inner_text("#xero-dashboard")
    assert page.is_checked("#id_auto_sync")
    shot(page, "settings")
    page.uncheck("#id_auto_sync")
    submit(page, "#xero-sync-settings input[type=submit]")
    assert "Saved: sync settings, payment methods and tax mapping." in flash(page)
    assert not page.is_checked("#id_auto_sync")
    shot(page, "auto-sync-off")

    # and on again
    page.check("#id_auto_sync")
    submit(page, "#xero-sync-settings input[type=submit]")
    assert "Saved: sync settings, payment methods and tax mapping." in flash(page)
    page.reload()
    assert page.is_checked("#id_auto_sync")
    shot(page, "auto-sync-on")

    # EFTPOS receipts pushed to Xero, into the card clearing account chosen from the organisation's accounts
    row = page.locator("#xero-payment-methods tbody tr", has_text="EFTPOS")
    direction = row.locator("select[name$=direction]")
    account = row.locator("select[name$=xero_account_code]")
    offered = account.locator("option").all_inner_texts()
    assert any(option.startswith("620 — ") for option in offered), offered
    assert not any(option.startswith("200 — ") for option in offered)  # a sales account takes no payments
    direction.select_option(label="Push receipts to Xero")
    account.select_option("620")
    shot(page, "payment-method-chosen")
    submit(page, "#xero-payment-methods input[type=submit]")
    assert "Saved: sync settings, payment methods and tax mapping." in flash(page)
    row = page.locator("#xero-payment-methods tbody tr", has_text="EFTPOS")
    assert row.locator("select[name$=direction] option:checked").inner_text() == "Push receipts to Xero"
    assert row.locator("select[name$=xero_account_code] option:checked").inner_text().startswith("620 — ")
    shot(page, "payment-method-saved")
    assert eftpos.xero_config.direction == "push"


def test_staff_make_a_sale_send_it_to_xero_and_open_it_there(browser_page, xero_connected, xero_site, screenshots,
                                                              eager_celery):
    page, shot = browser_page, screenshots
    number = make_a_sale_in_the_admin(page, shot)

    # the new sale waits for Xero
    page.goto("/admin/ecommerce/sale/")
    assert sale_row(page, number).locator(".xero-state").inner_text() == "Pending"
    shot(page, "sale-pending")

    # Send to Xero now
    send_to_xero_now(page, number)
    assert "1 record(s) will be sent to Xero in a moment (the quiet period is skipped)." in flash(page)
    row = sale_row(page, number)
    assert row.locator(".xero-state").inner_text() == "Synced"
    shot(page, "sale-synced")

    # "open in Xero" opens the invoice on Xero's side
    with page.context.expect_page() as opened:
        row.locator("a.xero-open", has_text="open in Xero").click()
    in_xero = opened.value
    in_xero.wait_for_load_state()
    assert in_xero.inner_text("h1") == f"Invoice {number}"
    assert '"Total": "89.40"' in in_xero.inner_text("pre") or '"Total": 89.4' in in_xero.inner_text("pre")
    assert '"Status": "AUTHORISED"' in in_xero.inner_text("pre")
    shot(in_xero, "invoice-in-xero")
    in_xero.close()

    # and the sale's own page shows it synced, with its history
    submit(page, row.locator("th a, td a", has_text=number).first)
    panel = page.locator("table.xero-panel")
    assert "Synced" in panel.inner_text()
    assert "Xero id" in panel.inner_text() and "Last pushed" in panel.inner_text()
    assert "pushed" in page.inner_text(".field-xero_panel")
    shot(page, "sale-page-synced")


def test_staff_see_xeros_message_when_xero_refuses_a_sale(browser_page, xero_connected, xero_site, screenshots,
                                                          eager_celery):
    page, shot = browser_page, screenshots
    number = make_a_sale_in_the_admin(page, shot)
    send_to_xero_now(page, number)
    assert sale_row(page, number).locator(".xero-state").inner_text() == "Synced"

    # a line booked to an account the organisation does not have
    submit(page, sale_row(page, number).locator("th a, td a", has_text=number).first)
    page.fill("#id_lines-0-account_code", "999")
    shot(page, "line-account-999")
    submit(page, "input[name=_save]")
    assert "was changed successfully" in flash(page)
    send_to_xero_now(page, number)
    assert sale_row(page, number).locator(".xero-state").inner_text() == "Error"
    shot(page, "sale-error")

    # the list filtered to errors shows it
    xero_filter(page, "Error")
    assert page.locator("#result_list tbody tr").count() == 1
    assert sale_row(page, number).locator(".xero-state").inner_text() == "Error"
    shot(page, "filter-error")
    errors_list = page.url

    # its page gives Xero's own words and what to do
    submit(page, sale_row(page, number).locator("th a, td a", has_text=number).first)
    panel = page.locator("table.xero-panel").inner_text()
    assert "Error" in panel
    assert "Xero says" in panel and WORDS_999 in panel
    assert "What to do" in panel and "Correct what Xero says on the record and save it" in panel
    page.locator("table.xero-panel").scroll_into_view_if_needed()
    shot(page, "xero-says")

    # the Xero links list, where records are sent again, shows Xero's words too
    page.goto("/admin/xero_sync/xerolink/?state__exact=error")
    assert WORDS_999 in page.inner_text("#result_list")
    shot(page, "xero-links-errors")

    # and so does the list of sales filtered to errors, without opening each one
    page.goto(errors_list)
    assert WORDS_999 in sale_row(page, number).inner_text()


def test_staff_open_the_dashboard_and_see_the_charts(browser_page, xero_connected, xero_site, screenshots,
                                                     eager_celery):
    page, shot = browser_page, screenshots
    # a day's work: a sale sent, one refused
    number = make_a_sale_in_the_admin(page, shot)
    send_to_xero_now(page, number)
    services.sale_update(sale=Sale.objects.get(number=number), lines=[{
        "description": "Merino beanie", "quantity": Decimal("1"), "unit_amount": Decimal("10"), "tax_code": "GST",
        "tax_rate": Decimal("15"), "account_code": "999"}])

    page.goto("/xero/settings/")
    dashboard = page.locator("#xero-dashboard")
    assert "Demo Company (NZ): Connected" in dashboard.inner_text()
    assert "1 record" in dashboard.inner_text()  # the changed sale waits to be pushed
    assert page.locator("svg.xero-chart").count() == 2
    assert page.locator("svg.xero-chart rect.bar").count() == 60  # a bar per day, 30 days each
    assert [page.locator("svg.xero-chart").nth(i).get_attribute("aria-label") for i in range(2)] == [
        "Records synced per day, last 30 days", "Errors per day, last 30 days"]
    synced_chart = page.locator("svg.xero-chart").first
    today = synced_chart.locator("rect.bar").last
    # today's bar: the contact and the sale pushed, and the invoice pulled back; the earlier days are empty
    assert re.fullmatch(r"\d{4}-\d\d-\d\d: 3", today.text_content()), today.text_content()
    assert float(today.get_attribute("height")) > 0
    assert "(peak 3)" in synced_chart.text_content()
    shot(page, "dashboard")

    # Sync now pushes what waits; the run and the error appear
    submit(page, "#xero-runs input[type=submit][value='Sync now']")
    assert "Sync started: the run appears below when it is done." in flash(page)
    runs = page.locator("#xero-runs").inner_text()
    assert "1 sale" in runs and WORDS_999 in runs
    assert "0 records waiting to be pushed" in runs
    assert "peak 1" in page.locator("svg.xero-chart").nth(1).text_content()  # today's error
    page.locator("#xero-runs").scroll_into_view_if_needed()
    shot(page, "dashboard-after-sync-now")
    assert XeroLink.objects.get(xero_key=number).state == XeroLink.State.ERROR


# --- Not for everyone -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/xero/settings/", "/admin/ecommerce/sale/", "/admin/xero_sync/xerolink/"])
def test_a_logged_in_user_who_is_not_staff_sees_none_of_it(new_page, live_server, xero_connected, screenshots,
                                                           django_user_model, path):
    page = new_page
    services.sale_create(contact=services.contact_create(first_name="Aroha", last_name="Walker"), confirm=True,
                         lines=[{"description": "Merino beanie", "quantity": Decimal("1"), "unit_amount": Decimal("10")}])
    customer = django_user_model.objects.create_user("customer", "c@example.com", "customer-password")
    # the customer is logged in (on the shop's own pages: the admin's form would not take them)
    client = Client()
    client.force_login(customer)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])

    page.goto(path)

    assert page.url.startswith(f"{live_server.url}/admin/login/"), page.url
    assert "You are authenticated as customer, but are not authorized to access this page." in text(page)
    assert page.locator("#id_username").is_visible()
    for secret in ("Xero settings", "Send to Xero now", "open in Xero", "Demo Company", "S-0"):
        assert secret not in page.content()
    screenshots(page, "not-staff-" + path.strip("/").replace("/", "-"))


def test_a_non_staff_user_cannot_log_in_to_the_admin_with_the_form(new_page, live_server, transactional_db,
                                                                   django_user_model, screenshots):
    django_user_model.objects.create_user("customer", "c@example.com", "customer-password")
    log_in(new_page, "customer", "customer-password")
    assert "Please enter the correct username and password for a staff account." in text(new_page)
    new_page.goto("/xero/settings/")
    assert new_page.url.startswith(f"{live_server.url}/admin/login/")
    screenshots(new_page, "customer-refused")
