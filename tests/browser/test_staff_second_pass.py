"""Issue 18, in a real browser at 1280 px: the settings page keeps every entry, nothing goes to Xero before
the organisation is set up, a refused record is visible wherever errors are and named as staff know it, the
pages fit the screen, the receipt page shows its Xero panel once, the sale says what Xero will do before
it happens, and the contact picker tells two David Smiths apart.

What is asserted is what a person sees. Screenshots: var/screenshots/<test>/.
"""

import re
from decimal import Decimal

import pytest

from ecommerce import services
from ecommerce.models import Sale
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.models import XeroLink
from xero_sync.services.sync import sync_attempt

from .test_staff_journey import flash, submit, text

pytestmark = pytest.mark.django_db(transaction=True)

SCREEN_WIDTH = 1280
GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}


@pytest.fixture
def xero_bare(xero_site, db):
    """Connected to the emulator's Demo Company, its accounts fetched, nothing configured yet: as a shop is
    right after pressing Connect to Xero."""
    from xero_sync import client
    from xero_sync.services import configuration
    from xero_sync.services.connection import _connection_activate

    token = client.normalise_token(xero_site.issue_token(client_id="shop-test-client"))
    connection = _connection_activate(
        tenant={"tenantId": xero_site.default_tenant_id, "tenantName": "Demo Company (NZ)"}, token=token, user=None)
    configuration.chart_refresh(connection=connection)
    xero_site.reset_calls()
    return connection


def fits_the_screen(page) -> None:
    """No horizontal scrolling: neither the page nor a list's or an inline's own scroll box is wider than
    what shows."""
    widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth,
        boxes: [...document.querySelectorAll('#changelist .results, .inline-group .tabular, .module table')]
            .map(box => [box.id || box.className, box.scrollWidth, box.clientWidth])})""")
    assert widths["page"] <= SCREEN_WIDTH, (page.url, widths)
    too_wide = [box for box in widths["boxes"] if box[1] > box[2] + 1]
    assert not too_wide, (page.url, too_wide)


def test_any_save_button_saves_every_section_and_a_mistake_loses_nothing(browser_page, xero_bare, xero_site,
                                                                         screenshots, eager_celery):
    page, shot = browser_page, screenshots
    card = a_payment_method("card", "Card")
    sale = a_sale(contact=a_contact(first_name="Mere", last_name="Tane"), lines=[GST_LINE])

    # right after connecting: the checklist says what is left, and nothing goes to Xero meanwhile
    page.goto("/xero/settings/")
    checklist = page.inner_text("#xero-setup")
    assert "Nothing is pushed to Xero until every step is done." in checklist
    assert "Choose the default sales account" in checklist and "Map GST to a Xero tax type." in checklist
    assert "Choose push, pull or neither for Card." in checklist
    shot(page, "checklist-to-do")
    submit(page, "#xero-runs input[type=submit][value='Sync now']")
    assert sale.number not in {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}

    # a mistake in the first section, entries in the other two, and the last section's button
    page.fill("#id_max_wait_seconds", "5")
    page.select_option("#id_default_sales_account_code", "200")
    row = page.locator("#xero-payment-methods tbody tr", has_text="Card")
    row.locator("select[name$=direction]").select_option(label="Push receipts to Xero")
    row.locator("select[name$=xero_account_code]").select_option("620")
    page.locator("#xero-tax-mapping tbody tr", has_text="GST").locator("select").select_option("OUTPUT2")
    submit(page, "#xero-tax-mapping input[type=submit]")
    assert "Nothing was saved" in flash(page)
    assert "The longest wait cannot be shorter than the quiet period." in text(page)
    # every entry is still there, for the one correction
    row = page.locator("#xero-payment-methods tbody tr", has_text="Card")
    assert row.locator("select[name$=xero_account_code] option:checked").inner_text().startswith("620 — ")
    assert page.locator("#xero-tax-mapping select option:checked").first.inner_text().startswith("OUTPUT2")
    assert page.locator("#id_default_sales_account_code option:checked").inner_text().startswith("200 — ")
    shot(page, "one-mistake-everything-kept")

    page.fill("#id_max_wait_seconds", "600")
    submit(page, "#xero-tax-mapping input[type=submit]")
    assert "Saved: sync settings, payment methods and tax mapping." in flash(page)
    page.reload()
    assert page.locator("#id_default_sales_account_code option:checked").inner_text().startswith("200 — ")
    row = page.locator("#xero-payment-methods tbody tr", has_text="Card")
    assert row.locator("select[name$=direction] option:checked").inner_text() == "Push receipts to Xero"
    assert "Set up: changes go to Xero as they are made." in page.inner_text("#xero-setup")
    shot(page, "saved-and-set-up")
    assert card.xero_config.xero_account_code == "620"

    # and now the sale goes
    submit(page, "#xero-runs input[type=submit][value='Sync now']")
    assert sale.number in {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}


def test_a_refused_sale_is_named_and_explained_wherever_errors_are(browser_page, xero_connected, screenshots,
                                                                  eager_celery):
    page, shot = browser_page, screenshots
    refused = a_sale(contact=a_contact(first_name="Tui", last_name="Ngata"),
                     lines=[{**GST_LINE, "account_code": "999"}])
    site_check = a_sale(contact=a_contact(first_name="Hemi", last_name="Parata"), lines=[GST_LINE])
    sync_attempt(trigger="manual", force=True)  # the organisation has received a sale: it is set up
    services.sale_update(sale=site_check, lines=[{**GST_LINE, "tax_code": "GST15"}])
    sync_attempt(trigger="manual", force=True)

    # Current errors on the settings page: by number, linked, who said it and what to do
    page.goto("/xero/settings/")
    rows = page.locator("#xero-runs tr.xero-problem")
    xero_row = rows.filter(has_text=refused.number)
    assert "Xero says:" in xero_row.inner_text() and "'999'" in xero_row.inner_text()
    assert "Correct what Xero says on the record" in xero_row.inner_text()
    ours = rows.filter(has_text=site_check.number)
    assert "This site's check (not sent to Xero):" in ours.inner_text() and "GST15" in ours.inner_text()
    assert "Map the tax code on the Xero settings page" in ours.inner_text()
    assert not re.search(r"Sale \d+\b", page.inner_text("#xero-runs"))
    page.locator("#xero-runs").scroll_into_view_if_needed()
    shot(page, "current-errors")

    # All records with errors
    submit(page, page.locator("a", has_text="All records with errors"))
    listed = page.inner_text("#result_list")
    assert f"Sale {refused.number}" in listed and f"Sale {site_check.number}" in listed
    assert "Xero says: Account code '999'" in listed and "This site's check (not sent to Xero): " in listed
    shot(page, "all-records-with-errors")
    fits_the_screen(page)

    # the record's panel, with what to do and its history
    submit(page, page.locator("#result_list a", has_text=site_check.number))
    panel = page.inner_text(".field-xero_panel")
    assert "Error" in panel and "This site's check (not sent to Xero)" in panel and "What to do" in panel
    assert "Tax mapping" in panel and "'GST15'" in panel  # said on the sale too, before any sync
    assert "History" in panel and "Nothing yet." not in panel
    page.locator(".field-xero_panel").scroll_into_view_if_needed()
    shot(page, "panel")


def test_a_tax_code_nobody_mapped_is_warned_of_when_the_sale_is_saved(browser_page, xero_connected, screenshots):
    page, shot = browser_page, screenshots
    a_contact(first_name="Aroha", last_name="Walker")
    page.goto("/admin/ecommerce/sale/add/")
    page.click("#sale_form .field-contact .select2-selection")
    page.fill(".select2-search__field", "Walker")
    page.locator(".select2-results__option", has_text="Aroha Walker").click()
    page.select_option("#id_status", "confirmed")
    page.fill("#id_lines-0-description", "Merino beanie")
    page.fill("#id_lines-0-unit_amount", "39.95")
    page.fill("#id_lines-0-tax_rate", "15")
    page.fill("#id_lines-0-tax_code", "gst")
    fits_the_screen(page)
    shot(page, "sale-with-gst-lower-case")
    submit(page, "input[name=_save]")
    number = re.search(r"The sale “(S-\d+)” was added successfully", flash(page)).group(1)
    assert f"{number} cannot reach Xero until its tax code 'gst' is mapped to a Xero tax type" in flash(page)
    shot(page, "warned-on-save")
    # and the mapping table lists it
    page.goto("/xero/settings/")
    unmapped = page.locator("#xero-tax-mapping tr.xero-unmapped").inner_text()
    assert "gst" in unmapped and "Used on confirmed sales and not mapped yet" in unmapped


def test_the_sale_form_and_the_lists_fit_a_1280_pixel_screen(browser_page, xero_connected, screenshots):
    page, shot = browser_page, screenshots
    for index in range(12):
        contact = a_contact(first_name=f"Alexandra-Jane {index}", last_name="Featherstonehaugh-Whitmore",
                            company_name=f"Featherstonehaugh Antique Restorations {index} Limited",
                            email=f"alexandra.jane.featherstonehaugh{index}@restorations.example.co.nz",
                            phone="+64 21 555 0100", city="Palmerston North")
        sale = a_sale(contact=contact, confirm=index % 3 != 0, lines=[GST_LINE, {**GST_LINE, "description": "Scarf"}])
        if sale.status == Sale.Status.CONFIRMED:
            services.receipt_record(sale=sale, payment_method=a_payment_method("cash", "Cash"), amount=Decimal("10"),
                                    reference=f"Counter {index}")
    sync_attempt(trigger="manual", force=True)
    sale = Sale.objects.filter(status=Sale.Status.CONFIRMED).first()
    pages = {"sale-add": "/admin/ecommerce/sale/add/", "sale-change": f"/admin/ecommerce/sale/{sale.pk}/change/",
             "sales": "/admin/ecommerce/sale/", "contacts": "/admin/ecommerce/contact/",
             "receipts": "/admin/ecommerce/receipt/", "xero-links": "/admin/xero_sync/xerolink/",
             "invoices": "/admin/ecommerce/invoice/", "settings": "/xero/settings/"}
    for name, path in pages.items():
        page.goto(path)
        shot(page, name)
        fits_the_screen(page)
    # the contacts list shows its last columns on screen
    page.goto("/admin/ecommerce/contact/")
    for heading in ("Last invoice", "Xero"):
        box = page.locator("#result_list thead th", has_text=heading).last.bounding_box()
        assert box["x"] + box["width"] <= SCREEN_WIDTH, (heading, box)
    # a record not for Xero says why
    page.goto("/admin/ecommerce/sale/?status__exact=draft")
    assert "Not for Xero yet (a draft: it goes once confirmed)" in page.inner_text("#result_list")
    page.goto("/admin/ecommerce/receipt/")
    assert "Not for Xero yet (Cash is not pushed to Xero" in page.inner_text("#result_list")


def test_the_receipt_page_shows_its_xero_panel_once(browser_page, xero_connected, screenshots, eager_celery):
    page, shot = browser_page, screenshots
    sale = a_sale(lines=[GST_LINE])
    receipt = services.receipt_record(sale=sale, payment_method=a_payment_method("card", "Card"), amount=Decimal("20"))
    sync_attempt(trigger="manual", force=True)

    page.goto(f"/admin/ecommerce/receipt/{receipt.pk}/change/")
    assert page.locator("table.xero-panel").count() == 1
    assert "Synced" in page.inner_text("table.xero-panel")
    shot(page, "receipt")
    page.goto("/admin/ecommerce/receipt/add/")
    assert "Not connected to Xero" not in text(page)
    assert page.locator(".field-xero_panel").count() == 0
    shot(page, "add-receipt")


def test_the_sale_says_what_xero_will_do_before_a_change_or_a_deletion(browser_page, xero_connected, xero_site,
                                                                       screenshots, eager_celery):
    page, shot = browser_page, screenshots
    sale = a_sale(contact=a_contact(first_name="Rawiri", last_name="Hohepa"), lines=[GST_LINE])
    services.receipt_record(sale=sale, payment_method=a_payment_method("card", "Card"), amount=Decimal("79.90"))
    sync_attempt(trigger="manual", force=True)
    sync_attempt(trigger="manual", force=True)  # the pull brings Xero's PAID back
    link = XeroLink.objects.get(kind="sale", local_id=sale.pk)
    assert link.xero_status == "PAID", (link.xero_status, link.last_error)

    page.goto(f"/admin/ecommerce/sale/{sale.pk}/change/")
    said = "\n".join(page.locator("ul.messagelist li").all_inner_texts())
    assert f"Xero has {sale.number}'s invoice as paid, and Xero refuses changes to a paid invoice" in said
    assert "use “Record a refund” on this page" in said
    assert page.locator("a.refund-link", has_text="Record a refund").count() == 1
    shot(page, "paid-in-xero")

    # saved anyway: Xero refuses it, and the sale says so beside the website's own figures
    page.fill("#id_lines-0-description", "Merino beanie, grey")
    submit(page, "input[name=_save]")
    sync_attempt(trigger="manual", force=True)
    page.goto(f"/admin/ecommerce/sale/{sale.pk}/change/")
    panel = page.inner_text(".field-xero_panel")
    assert "Status in Xero\tPAID" in panel or "PAID" in panel
    assert "Before you change it" in panel and "Paid and Due below count the website's receipts" in panel
    page.locator(".field-xero_panel").scroll_into_view_if_needed()
    shot(page, "edited-anyway-xero-refused")

    page.goto(f"/admin/ecommerce/sale/{sale.pk}/delete/")
    assert "Deleting it here does not delete it there: Xero keeps the invoice" in page.inner_text("#xero-keeps")
    shot(page, "delete-says-xero-keeps-it")

    # and so does deleting from the list
    page.goto("/admin/ecommerce/sale/")
    page.locator("#result_list tbody tr", has_text=sale.number).locator("input.action-select").check()
    page.select_option("select[name=action]", value="delete_selected")
    submit(page, "#changelist-form button[name=index]")
    assert "never deletes their invoices in Xero: Xero keeps every invoice it holds" in page.inner_text("#xero-keeps")
    shot(page, "delete-selected-says-xero-keeps-them")


def test_the_contact_picker_tells_two_people_of_one_name_apart(browser_page, xero_connected, screenshots):
    page, shot = browser_page, screenshots
    a_contact(first_name="David", last_name="Smith", email="david@harbourview.example.com", city="Nelson")
    a_contact(first_name="David", last_name="Smith", email="dsmith@kauri.example.com", phone="021 555 0199")

    page.goto("/admin/ecommerce/sale/add/")
    page.click("#sale_form .field-contact .select2-selection")
    page.fill(".select2-search__field", "Smith")
    options = page.locator(".select2-results__option", has_text="David Smith")
    options.first.wait_for()
    offered = options.all_inner_texts()
    assert sorted(offered) == ["David Smith — david@harbourview.example.com · Nelson",
                               "David Smith — dsmith@kauri.example.com · 021 555 0199"], offered
    shot(page, "two-david-smiths")
    options.filter(has_text="kauri").click()
    assert "dsmith@kauri.example.com" in page.inner_text("#sale_form .field-contact")
