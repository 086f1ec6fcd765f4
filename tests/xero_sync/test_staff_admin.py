"""What shop staff see of the sync in the admin, through the Django test client against the live emulator:
the Xero column and filter on contacts, sales and receipts, the "open in Xero" link, "Send to Xero now",
the Xero panel on each change form, requeueing records Xero gave up on, the sync log, and the contacts
admin's marketing figures (lifetime invoiced, invoice count, last invoice) with their CSV export.

Records reach each state the way they do in the shop: pushed by a real sync run to the emulator, which
refuses, locks or fails them by its own rules.
"""

import csv
import datetime
import io
import re
from decimal import Decimal
from html import unescape

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from ecommerce import selectors, services
from ecommerce.models import Contact, Receipt, Sale
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.models import OutboxEntry, RecordKind, SyncRun, XeroLink
from xero_sync.services.push import MAX_ATTEMPTS
from xero_sync.services.sync import sync_is_due, sync_run

pytestmark = pytest.mark.django_db

State = XeroLink.State
CHANGELIST = {Contact: "admin:ecommerce_contact_changelist", Sale: "admin:ecommerce_sale_changelist",
              Receipt: "admin:ecommerce_receipt_changelist"}
CHANGE = {Contact: "admin:ecommerce_contact_change", Sale: "admin:ecommerce_sale_change",
          Receipt: "admin:ecommerce_receipt_change"}
KIND = {Contact: RecordKind.CONTACT, Sale: RecordKind.SALE, Receipt: RecordKind.RECEIPT}
WORDS_999 = "Account code '999' is not a valid code for this document."


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_celery():
    """"Send to Xero now" and "Sync now" queue a Celery task: run it in the request instead."""
    from config.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


# --- Building the shop --------------------------------------------------------------------------------


def line(description: str = "Merino beanie", quantity: str = "1", unit_amount: str = "40.00", **fields) -> dict:
    return {"description": description, "quantity": Decimal(quantity), "unit_amount": Decimal(unit_amount),
            "tax_code": "GST", "tax_rate": Decimal("15"), **fields}


def person(first_name: str, last_name: str = "Walker") -> Contact:
    return a_contact(first_name=first_name, last_name=last_name)


def order(contact: Contact | None = None, **line_fields) -> Sale:
    return a_sale(contact=contact or person("Buyer"), lines=[line(**line_fields)])


def cash():
    """Cash, set to neither push nor pull: its receipts never leave the site."""
    from xero_sync.services import configuration

    method = a_payment_method("cash", "Cash")
    configuration.payment_method_configure(payment_method=method, direction="none", account_code="")
    return method


def push(**options) -> SyncRun:
    run = sync_run(trigger="manual", force=True, pull=False, **options)
    assert run is not None, "the sync did not run"
    return run


def retries_due_now() -> None:
    OutboxEntry.objects.filter(not_before__isnull=False).update(
        not_before=timezone.now() - datetime.timedelta(days=1))


def link_of(record) -> XeroLink:
    return XeroLink.objects.get(kind=KIND[type(record)], local_id=record.pk)


def dead_lettered_sale(xero) -> Sale:
    """A sale whose invoice Xero failed with 503 on every attempt, until the push gave up on it."""
    sale = order(person("Dead", "Letter"))
    xero.inject_fault("503", method="PUT", path_contains="/Invoices", count=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        retries_due_now()
        push()
    assert link_of(sale).state == State.DEAD
    return sale


@pytest.fixture
def shop(xero_connected, xero_site):
    """One record in each Xero state, every one of them reached through real pushes to the emulator."""
    records = {"dead": dead_lettered_sale(xero_site)}
    synced = order(person("Aroha"), unit_amount="100.00")
    records["synced"] = synced
    records["synced receipt"] = services.receipt_record(sale=synced, payment_method=a_payment_method(),
                                                        amount=Decimal("50.00"), reference="ch_1")
    records["cash receipt"] = services.receipt_record(sale=synced, payment_method=cash(), amount=Decimal("10.00"))
    paid = order(person("Mere"), unit_amount="60.00")
    records["paid"] = paid
    records["conflict receipt"] = services.receipt_record(sale=paid, payment_method=a_payment_method(),
                                                          amount=Decimal("20.00"))
    locked = order(person("Hemi"), unit_amount="80.00")
    records["locked"] = locked
    records["lonely contact"] = person("Nobody", "Bought")
    records["draft"] = a_sale(contact=person("Just", "Looking"), confirm=False, lines=[line()])
    first = push()
    assert first.failed == {}, first.errors

    # a deposit against Hemi's invoice in Xero, then his order edited on the website: Xero locks it
    xero_site.record_bank_payment(str(link_of(locked).xero_id), amount="10.00", account_code="090")
    services.sale_update(sale=locked, lines=[line(unit_amount="85.00")])
    # Mere's receipt changed after it reached Xero: Xero payments cannot be edited
    receipt = records["conflict receipt"]
    receipt.amount = Decimal("25.00")
    receipt.full_clean()
    receipt.save()
    # a line booked to an account the organisation does not have: Xero refuses the invoice
    records["error"] = order(person("Wiremu"), account_code="999")
    push()
    # and an order nobody has sent yet
    records["pending"] = order(person("Pending", "Payne"))

    assert link_of(records["locked"]).state == State.LOCKED, link_of(records["locked"]).last_error
    assert link_of(records["conflict receipt"]).state == State.CONFLICT
    assert link_of(records["error"]).state == State.ERROR
    assert link_of(records["synced"]).state == State.SYNCED
    return records


# --- Reading the admin pages as staff see them --------------------------------------------------------


def text_of(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows(response) -> dict[int, str]:
    """The changelist's rows by primary key, as HTML."""
    html = response.content.decode()
    assert response.status_code == 200, html[:500]
    body = html.split('<tbody>', 1)[1].split('</tbody>', 1)[0] if '<tbody>' in html else ""
    found = {}
    for row in re.findall(r"<tr.*?</tr>", body, flags=re.S):
        # the row's checkbox, or on a list without actions its link to the record's page
        pk = re.search(r'name="_selected_action" value="(\d+)"', row) or re.search(r'href="[^"]*/(\d+)/change/', row)
        if pk:
            found[int(pk.group(1))] = row
    return found


def xero_states(response) -> dict[int, str]:
    """Each row's Xero column, as staff read it."""
    states = {}
    for pk, row in rows(response).items():
        cell = re.search(r'<span class="xero-state[^"]*"[^>]*>(.*?)</span>', row, flags=re.S)
        states[pk] = text_of(cell.group(1)) if cell else None
    return states


def open_in_xero(row: str) -> str | None:
    found = re.search(r'<a class="xero-open" href="([^"]+)"', row)
    return unescape(found.group(1)) if found else None


def changelist(client, model, **params):
    return client.get(reverse(CHANGELIST[model]), params)


def change_form(client, record) -> str:
    response = client.get(reverse(CHANGE[type(record)], args=[record.pk]))
    assert response.status_code == 200
    return response.content.decode()


def xero_panel(html: str) -> str:
    start = html.index('<table class="xero-panel">')
    return text_of(html[start:html.index("</ul>", start)])


def action(client, model, name: str, records, **extra):
    return client.post(reverse(CHANGELIST[model]), {
        "action": name, "_selected_action": [record.pk for record in records], "index": "0", **extra})


# --- The Xero column ----------------------------------------------------------------------------------


def test_the_sales_list_shows_each_sales_xero_state_in_words(admin_client, shop):
    states = xero_states(changelist(admin_client, Sale))
    assert states[shop["synced"].pk] == "Synced"
    assert states[shop["pending"].pk] == "Pending"
    assert states[shop["error"].pk] == "Error"
    assert states[shop["locked"].pk] == "Locked in Xero"
    assert states[shop["dead"].pk] == "Gave up"
    assert states[shop["draft"].pk] == "Not for Xero yet"


def test_the_receipts_list_shows_synced_conflict_and_not_for_xero(admin_client, shop):
    states = xero_states(changelist(admin_client, Receipt))
    assert states == {shop["synced receipt"].pk: "Synced", shop["conflict receipt"].pk: "Conflict",
                      shop["cash receipt"].pk: "Not for Xero yet"}


def test_the_contacts_list_shows_who_is_in_xero_and_who_is_not_for_xero_yet(admin_client, shop):
    states = xero_states(changelist(admin_client, Contact))
    assert states[shop["synced"].contact_id] == "Synced"
    assert states[shop["pending"].contact_id] == "Pending"
    assert states[shop["lonely contact"].pk] == "Not for Xero yet"
    assert states[shop["draft"].contact_id] == "Not for Xero yet"


def test_a_record_xero_will_never_take_reads_not_for_xero_yet_from_the_moment_it_is_saved(
        admin_client, xero_connected):
    # given, saved just now and not yet seen by any sync: a contact without a sale, a draft sale, and a
    # cash receipt (cash is not pushed to Xero) on a confirmed sale
    lonely = person("Nobody", "Bought")
    draft = a_sale(contact=person("Just", "Looking"), confirm=False, lines=[line()])
    sale = order(person("Aroha"))
    receipt = services.receipt_record(sale=sale, payment_method=cash(), amount=Decimal("5.00"))

    # then none of them claims to be on its way to Xero
    assert xero_states(changelist(admin_client, Contact))[lonely.pk] == "Not for Xero yet"
    assert xero_states(changelist(admin_client, Contact))[draft.contact_id] == "Not for Xero yet"
    assert xero_states(changelist(admin_client, Sale))[draft.pk] == "Not for Xero yet"
    assert xero_states(changelist(admin_client, Receipt))[receipt.pk] == "Not for Xero yet"
    # while the confirmed sale and its customer are
    assert xero_states(changelist(admin_client, Sale))[sale.pk] == "Pending"
    assert xero_states(changelist(admin_client, Contact))[sale.contact_id] == "Pending"


def test_the_sales_list_filtered_to_errors_shows_xeros_own_words(admin_client, shop):
    # staff looking for what went wrong read it in the list, without opening every sale
    found = rows(changelist(admin_client, Sale, xero="error"))
    assert list(found) == [shop["error"].pk]
    assert WORDS_999 in text_of(found[shop["error"].pk])


@pytest.mark.parametrize(("model", "state", "expected"), [
    (Sale, "synced", ["synced", "paid"]),
    (Sale, "pending", ["pending"]),
    (Sale, "error", ["error"]),
    (Sale, "locked", ["locked"]),
    (Sale, "dead", ["dead"]),
    (Sale, "conflict", []),
    (Sale, "not_eligible", ["draft"]),
    (Receipt, "synced", ["synced receipt"]),
    (Receipt, "conflict", ["conflict receipt"]),
    (Receipt, "not_eligible", ["cash receipt"]),
    (Receipt, "pending", []),
    (Contact, "not_eligible", ["lonely contact", "draft"]),
])
def test_the_xero_filter_narrows_the_list_to_one_state(admin_client, shop, model, state, expected):
    def pk(name: str) -> int:
        record = shop[name]
        return record.contact_id if model is Contact and isinstance(record, Sale) else record.pk

    response = changelist(admin_client, model, xero=state)
    assert sorted(rows(response)) == sorted(pk(name) for name in expected)


def test_the_xero_filter_offers_every_state_by_name(admin_client, shop):
    html = changelist(admin_client, Sale).content.decode()
    offered = re.findall(r'href="\?xero=(\w+)"[^>]*>([^<]+)</a>', html)
    assert dict(offered) == {"synced": "Synced", "pending": "Pending", "error": "Error", "locked": "Locked in Xero",
                             "conflict": "Conflict", "dead": "Gave up", "deleted": "Deleted in Xero",
                             "not_eligible": "Not for Xero yet"}


def test_contacts_filtered_as_synced_are_those_xero_holds(admin_client, shop, xero_site):
    listed = set(rows(changelist(admin_client, Contact, xero="synced")))
    in_xero = {int(c["ContactNumber"].removeprefix("WEB-C")) for c in xero_site.contacts()
               if (c.get("ContactNumber") or "").startswith("WEB-C")}
    assert listed == in_xero
    assert shop["synced"].contact_id in listed


# --- Open in Xero ---------------------------------------------------------------------------------------


def test_open_in_xero_opens_the_emulators_page_of_each_kind_of_record(admin_client, shop, xero_site):
    tenant = xero_site.default_tenant_id
    sale, receipt = shop["synced"], shop["synced receipt"]
    cases = [
        (Sale, sale, "invoices", sale.number),
        (Contact, sale.contact, "contacts", "Aroha Walker"),
        (Receipt, receipt, "payments", "Payment of 50.00"),
    ]
    for model, record, collection, shown in cases:
        url = open_in_xero(rows(changelist(admin_client, model))[record.pk])
        assert url == f"{xero_site.api_url.removesuffix('/api.xro/2.0')}/_emulator/orgs/{tenant}/{collection}/" \
                      f"{link_of(record).xero_id}"
        page = requests.get(url, timeout=5)
        assert page.status_code == 200, url
        assert shown in page.text


def test_only_records_xero_holds_have_an_open_in_xero_link(admin_client, shop):
    found = rows(changelist(admin_client, Sale))
    assert open_in_xero(found[shop["synced"].pk])
    assert open_in_xero(found[shop["locked"].pk])  # in Xero, with Xero's copy as it was
    for name in ("pending", "draft", "error", "dead"):
        assert open_in_xero(found[shop[name].pk]) is None, name


# --- Send to Xero now -----------------------------------------------------------------------------------


def test_send_to_xero_now_pushes_the_selected_sales_at_once_without_waiting_for_the_quiet_period(
        admin_client, xero_connected, xero_site, eager_celery):
    # given two confirmed sales made a moment ago, well inside the two-minute quiet period
    sales = [order(person("Aroha")), order(person("Mere"))]
    assert not sync_is_due()

    # when staff select them and choose "Send to Xero now"
    response = action(admin_client, Sale, "send_to_xero_now", sales)

    # then they are in Xero already, and the list says so
    assert response.status_code == 302
    assert sorted(invoice["InvoiceNumber"] for invoice in xero_site.invoices()) == sorted(s.number for s in sales)
    page = admin_client.get(response["Location"])
    assert "2 record(s) will be sent to Xero in a moment (the quiet period is skipped)." in page.content.decode()
    states = xero_states(page)
    assert [states[sale.pk] for sale in sales] == ["Synced", "Synced"]
    [run] = SyncRun.objects.all()
    assert (run.trigger, run.status, run.pushed) == ("manual", "done", {"contact": 2, "sale": 2})
    assert not OutboxEntry.objects.exists()


def test_send_to_xero_now_works_with_auto_sync_switched_off(admin_client, xero_connected, xero_site, eager_celery):
    from xero_sync.services import configuration

    configuration.sync_settings_update(auto_sync=False)
    sale = order(person("Aroha"))
    action(admin_client, Sale, "send_to_xero_now", [sale])
    assert [invoice["InvoiceNumber"] for invoice in xero_site.invoices()] == [sale.number]


def test_send_to_xero_now_sends_a_corrected_record_again(admin_client, shop, xero_site, eager_celery):
    # given the sale Xero refused for its account code, corrected on the website
    sale = shop["error"]
    services.sale_update(sale=sale, lines=[line(account_code="200")])
    # when staff send it now
    action(admin_client, Sale, "send_to_xero_now", [sale])
    # then it is synced and in Xero
    assert link_of(sale).state == State.SYNCED
    assert sale.number in {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}
    assert xero_states(changelist(admin_client, Sale))[sale.pk] == "Synced"


def test_send_to_xero_now_on_contacts_pushes_them(admin_client, xero_connected, xero_site, eager_celery):
    contact = order(person("Aroha")).contact
    action(admin_client, Contact, "send_to_xero_now", [contact])
    assert [c["Name"] for c in xero_site.contacts() if c.get("ContactNumber") == f"WEB-C{contact.pk:06d}"] == [
        "Aroha Walker"]
    assert xero_states(changelist(admin_client, Contact))[contact.pk] == "Synced"


def test_send_to_xero_now_is_one_service_giving_records_a_fresh_start_and_queueing_them(xero_connected, xero_site):
    # given a sale Xero gave up on and one never sent (its outbox row already settled)
    dead = dead_lettered_sale(xero_site)
    fresh = order(person("Aroha"))
    OutboxEntry.objects.all().delete()

    # when both are sent now through the service (what the admin action calls)
    from xero_sync.services.links import links_send_now

    count = links_send_now(kind=RecordKind.SALE, local_ids=[dead.pk, fresh.pk, dead.pk])

    # then each is counted once, the given-up one starts afresh, and both are queued to go
    assert count == 2
    link = link_of(dead)
    assert (link.state, link.attempts, link.last_error) == (State.PENDING, 0, "")
    assert set(OutboxEntry.objects.filter(kind=RecordKind.SALE).values_list("local_id", flat=True)) == {
        dead.pk, fresh.pk}


def test_the_send_to_xero_now_action_only_calls_the_service_and_reports(admin_client, xero_connected,
                                                                          monkeypatch, eager_celery):
    from xero_sync import admin as xero_admin

    asked = []
    monkeypatch.setattr(xero_admin, "links_send_now",
                        lambda *, kind, local_ids: asked.append((kind, sorted(local_ids))) or len(asked[-1][1]))
    sales = [order(person("Aroha")), order(person("Mere"))]
    response = action(admin_client, Sale, "send_to_xero_now", sales)
    assert asked == [(RecordKind.SALE, sorted(sale.pk for sale in sales))]
    page = admin_client.get(response["Location"]).content.decode()
    assert "2 record(s) will be sent to Xero in a moment" in page


def staff_with(client, django_user_model, *codenames: str):
    """A staff member logged in with just these permissions."""
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(clerk)
    return client


@pytest.mark.parametrize("model", [Contact, Sale, Receipt])
def test_send_to_xero_now_needs_manage_xero_not_just_view(client, django_user_model, shop, model):
    # given a sale Xero gave up on, its customer and a receipt, and a staff member who may only view them
    # (and even change them: changing a record is not managing the sync)
    dead = shop["dead"]
    record = {Contact: dead.contact, Sale: dead, Receipt: shop["synced receipt"]}[model]
    name = model._meta.model_name
    viewer = staff_with(client, django_user_model, f"view_{name}", f"change_{name}")
    link_before = XeroLink.objects.filter(kind=KIND[model], local_id=record.pk).values_list(
        "state", "attempts").first()
    outbox_before = OutboxEntry.objects.count()
    # then the list does not offer "Send to Xero now"
    assert 'value="send_to_xero_now"' not in changelist(viewer, model).content.decode()
    # and a POST crafted by hand neither resets the record nor queues it nor starts a sync
    runs_before = SyncRun.objects.count()
    action(viewer, model, "send_to_xero_now", [record])
    assert XeroLink.objects.filter(kind=KIND[model], local_id=record.pk).values_list(
        "state", "attempts").first() == link_before
    assert OutboxEntry.objects.count() == outbox_before
    assert SyncRun.objects.count() == runs_before


def test_send_to_xero_now_is_offered_to_staff_who_manage_xero(client, django_user_model, xero_connected, xero_site,
                                                               eager_celery):
    sale = order(person("Aroha"))
    manager = staff_with(client, django_user_model, "view_sale", "manage_xero")
    assert 'value="send_to_xero_now"' in changelist(manager, Sale).content.decode()
    action(manager, Sale, "send_to_xero_now", [sale])
    assert [invoice["InvoiceNumber"] for invoice in xero_site.invoices()] == [sale.number]


def test_a_receipt_whose_method_pushes_to_no_account_is_not_for_xero_yet_as_the_push_sees_it(
        admin_client, xero_connected):
    # given an organisation that has received sales (set up), and a method set to push but left without a
    # Xero account (as an older setup could leave it: the checklist says so, and it holds no other push back)
    from xero_sync.models import PaymentMethodConfig

    order(person("Tama"))
    push()
    voucher = a_payment_method("voucher", "Voucher")
    PaymentMethodConfig.objects.create(payment_method=voucher, direction="push", xero_account_code="")
    receipt = services.receipt_record(sale=order(person("Aroha")), payment_method=voucher, amount=Decimal("5.00"))
    # then the list says it is not for Xero, and indeed a sync does not send it
    assert xero_states(changelist(admin_client, Receipt))[receipt.pk] == "Not for Xero yet"
    push()
    assert not XeroLink.objects.filter(kind=RecordKind.RECEIPT, local_id=receipt.pk, xero_id__isnull=False).exists()
    assert xero_states(changelist(admin_client, Receipt))[receipt.pk] == "Not for Xero yet"


# --- The Xero panel on the change form ------------------------------------------------------------------


def test_a_refused_sales_page_shows_xeros_words_and_what_to_do(admin_client, shop):
    panel = xero_panel(change_form(admin_client, shop["error"]))
    assert "State Error" in panel
    assert f"Xero says {WORDS_999}" in panel
    assert "What to do Correct what Xero says on the record and save it" in panel
    assert f"error: {WORDS_999}" in panel  # and in its history


def test_a_synced_sales_page_shows_its_xero_id_last_pushed_and_pulled_and_history(admin_client, shop, xero_site):
    sale = shop["synced"]
    sync_run(trigger="manual", force=True, push=False)  # the pull brings Xero's copy back
    link = link_of(sale)
    html = change_form(admin_client, sale)
    panel = xero_panel(html)
    assert "State Synced" in panel
    assert f"Xero id {link.xero_id}" in panel
    assert "Status in Xero AUTHORISED" in panel
    assert "Last pushed -" not in panel and "Last pulled -" not in panel
    assert f"pushed: Xero id {link.xero_id}" in panel
    assert "pulled: Xero holds it AUTHORISED" in panel
    assert "Xero says" not in panel
    # the Xero id opens the invoice on the emulator
    url = re.search(r'<table class="xero-panel">.*?<a href="([^"]+)"', html, flags=re.S).group(1)
    assert requests.get(unescape(url), timeout=5).status_code == 200


def test_the_xero_panels_times_are_in_the_shops_time_zone_like_the_rest_of_the_page(admin_client, shop):
    # The page shows "Created at" in the shop's time zone (Pacific/Auckland); the Xero panel's "Last pushed"
    # and history must not show another clock (UTC) beside it.
    link = link_of(shop["synced"])
    panel = xero_panel(change_form(admin_client, shop["synced"]))
    pushed_local = timezone.localtime(link.last_pushed_at)
    assert f"Last pushed {formats.date_format(pushed_local, 'DATETIME_FORMAT')}" in panel
    event = link.events.get(action="pushed")
    assert f"{formats.date_format(timezone.localtime(event.at), 'DATETIME_FORMAT')} — pushed" in panel


def test_a_locked_sales_page_explains_xeros_lock(admin_client, shop):
    panel = xero_panel(change_form(admin_client, shop["locked"]))
    assert "State Locked in Xero" in panel
    assert "Xero says This document cannot be edited as it has a payment or credit note allocated to it." in panel
    assert "Delete the payments in Xero (they can be re-applied)" in panel


def test_a_conflicting_receipts_page_explains_the_conflict(admin_client, shop):
    panel = xero_panel(change_form(admin_client, shop["conflict receipt"]))
    assert "State Conflict" in panel
    assert "Xero payments cannot be edited" in panel
    assert "What to do Delete the payment in Xero" in panel


def test_a_dead_lettered_sales_page_says_xero_gave_up_and_what_to_do(admin_client, shop):
    panel = xero_panel(change_form(admin_client, shop["dead"]))
    assert "State Gave up" in panel
    assert f"Gave up after {MAX_ATTEMPTS} attempts" in panel
    assert "Check Xero's status page, then use “Send to Xero now”." in panel


def test_a_record_never_sent_has_an_empty_history(admin_client, shop):
    panel = xero_panel(change_form(admin_client, shop["draft"]))
    assert "State Not for Xero yet" in panel
    assert "Nothing yet." in panel


def test_the_xero_panel_is_not_on_the_add_form(admin_client, xero_connected):
    html = admin_client.get(reverse("admin:ecommerce_sale_add")).content.decode()
    assert "xero-panel" not in html


# --- Xero links: requeue in bulk ------------------------------------------------------------------------


def test_records_xero_gave_up_on_are_requeued_in_bulk(admin_client, xero_connected, xero_site, eager_celery):
    # given three sales dead-lettered after Xero failed every attempt
    sales = [order(person(name)) for name in ("Aroha", "Mere", "Hemi")]
    xero_site.inject_fault("503", method="PUT", path_contains="/Invoices", count=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        retries_due_now()
        push()
    links = XeroLink.objects.filter(kind=RecordKind.SALE)
    assert [link.state for link in links] == [State.DEAD] * 3
    assert not OutboxEntry.objects.exists()
    listed = rows(admin_client.get(reverse("admin:xero_sync_xerolink_changelist"), {"state__exact": "dead"}))
    assert sorted(listed) == sorted(link.pk for link in links)

    # when staff select them all in the Xero links list and send them again
    response = admin_client.post(reverse("admin:xero_sync_xerolink_changelist"), {
        "action": "requeue", "_selected_action": [link.pk for link in links], "index": "0"}, follow=True)

    # then each is pending with a fresh attempt count and its error cleared, and has an outbox row
    assert "3 record(s) will be sent at the next sync." in response.content.decode()
    assert [(link.state, link.attempts, link.last_error) for link in links.all()] == [(State.PENDING, 0, "")] * 3
    assert sorted(OutboxEntry.objects.values_list("kind", "local_id")) == sorted(
        (RecordKind.SALE, sale.pk) for sale in sales)
    # and the next sync delivers them
    push()
    assert sorted(i["InvoiceNumber"] for i in xero_site.invoices()) == sorted(sale.number for sale in sales)


def test_requeue_is_offered_only_to_staff_who_manage_xero(client, xero_connected, django_user_model):
    from django.contrib.auth.models import Permission

    order(person("Aroha"))
    push()
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_xerolink"))
    client.force_login(clerk)
    html = client.get(reverse("admin:xero_sync_xerolink_changelist")).content.decode()
    assert "Send to Xero again" not in html
    clerk.user_permissions.add(Permission.objects.get(codename="manage_xero"))
    clerk = django_user_model.objects.get(pk=clerk.pk)
    client.force_login(clerk)
    assert "Send to Xero again (requeue)" in client.get(reverse("admin:xero_sync_xerolink_changelist")).content.decode()


def test_the_xero_links_list_shows_xeros_words_for_records_in_error(admin_client, shop):
    response = admin_client.get(reverse("admin:xero_sync_xerolink_changelist"), {"state__exact": "error"})
    listed = rows(response)
    assert list(listed) == [link_of(shop["error"]).pk]
    assert WORDS_999 in text_of(next(iter(listed.values())))


# --- The sync log ---------------------------------------------------------------------------------------


def test_the_sync_log_lists_each_run_with_what_it_pushed_pulled_and_the_calls_it_used(admin_client, xero_connected):
    order(person("Aroha"))
    pushed = push()
    pulled = sync_run(trigger="manual", force=True, push=False)
    response = admin_client.get(reverse("admin:xero_sync_syncrun_changelist"))
    listed = {pk: text_of(row) for pk, row in rows(response).items()}
    assert sorted(listed) == sorted([pushed.pk, pulled.pk])
    assert "1 contact, 1 sale" in listed[pushed.pk]
    assert f" {pushed.calls} " in f" {listed[pushed.pk]} " and pushed.calls == 3
    assert "Done" in listed[pushed.pk] and "Sync now" in listed[pushed.pk]
    assert "1 invoice" in listed[pulled.pk] and "{" not in listed[pulled.pk]
    assert re.search(r"\d+\.\d s", listed[pulled.pk])
    # a run's page shows its errors in full
    failed = order(person("Mere"), account_code="999")
    run = push()
    html = admin_client.get(reverse("admin:xero_sync_syncrun_change", args=[run.pk])).content.decode()
    assert f"sale {failed.number}: {WORDS_999}" in unescape(html)


def test_the_sync_log_is_read_only(admin_client, xero_connected):
    order(person("Aroha"))
    run = push()
    assert admin_client.get(reverse("admin:xero_sync_syncrun_add")).status_code == 403
    assert admin_client.post(reverse("admin:xero_sync_syncrun_delete", args=[run.pk]), {"post": "yes"}).status_code \
        == 403
    assert SyncRun.objects.filter(pk=run.pk).exists()


def test_the_dashboard_counts_runs_on_the_shops_days_and_calls_over_the_last_24_hours(admin_client, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    tenant = "00000000-0000-0000-0000-000000000001"
    now = timezone.now()
    # 20:30 UTC on 25 November is 9:30 in the morning of 26 November in Auckland (UTC+13 in summer).
    morning = datetime.datetime(2026, 11, 25, 20, 30, tzinfo=datetime.UTC)
    SyncRun.objects.create(tenant_id=tenant, trigger="auto", status="done", started_at=morning,
                           pushed={"contact": 2, "sale": 3}, failed={"receipt": 1}, calls=4)
    SyncRun.objects.create(tenant_id=tenant, trigger="auto", status="done", started_at=now - datetime.timedelta(hours=23),
                           calls=7)
    SyncRun.objects.create(tenant_id=tenant, trigger="auto", status="done", started_at=now - datetime.timedelta(hours=25),
                           calls=50)
    from xero_sync.selectors import calls_last_day, daily_series

    series = daily_series(days=2, today=datetime.date(2026, 11, 26))
    assert series["synced"] == [(datetime.date(2026, 11, 25), 0), (datetime.date(2026, 11, 26), 5)]
    assert series["failed"] == [(datetime.date(2026, 11, 25), 0), (datetime.date(2026, 11, 26), 1)]
    assert calls_last_day() == 7 + (4 if morning > now - datetime.timedelta(hours=24) else 0)
    page = admin_client.get(reverse("xero_sync:settings")).content.decode()
    assert f"Xero calls in the last 24 hours</th><td>{calls_last_day()}" in page
    listed = {pk: text_of(row) for pk, row in rows(admin_client.get(
        reverse("admin:xero_sync_syncrun_changelist"))).items()}
    assert "2 contacts, 3 sales" in listed[SyncRun.objects.get(started_at=morning).pk]
    assert "1 receipt" in listed[SyncRun.objects.get(started_at=morning).pk]


# --- Contacts for marketing: what Xero invoiced them ------------------------------------------------------


def tea(unit_amount: str, **fields) -> dict:
    return {"Description": "Kawakawa tea", "Quantity": 1, "UnitAmount": unit_amount, "AccountCode": "200",
            "TaxType": "OUTPUT2", **fields}


@pytest.fixture
def customers(xero_connected, xero_site):
    """Customers whose invoices began on the website or in Xero, pulled back as Xero holds them:
    Aroha: a website order of 100.00 and an invoice of 250.50 typed in Xero (dated 2026-03-01);
    Mere: a website order of 40.00, a voided invoice of 900.00, a draft of 700.00;
    Hemi: only an invoice typed in Xero, 30.00 dated 2020-06-01 (lapsed);
    Tui: a contact who never bought."""
    aroha, mere, hemi = person("Aroha"), person("Mere", "Tane"), person("Hemi", "Parata")
    tui = person("Tui", "Nobody")
    order(aroha, unit_amount="100.00")
    order(mere, unit_amount="40.00")
    order(hemi, unit_amount="1.00")  # brings Hemi into Xero; its invoice is voided there below
    push()

    def xero_contact(contact):
        return {"ContactID": str(link_of(contact).xero_id)}

    xero_site.create_invoice(Contact=xero_contact(aroha), LineAmountTypes="Inclusive", Date="2026-03-01",
                             LineItems=[tea("250.50")])
    voided = xero_site.create_invoice(Contact=xero_contact(mere), LineAmountTypes="Inclusive",
                                      Date="2026-03-02", LineItems=[tea("900.00")])
    xero_site.void_invoice(voided["InvoiceID"])
    xero_site.create_invoice(Contact=xero_contact(mere), Status="DRAFT", LineAmountTypes="Inclusive",
                             LineItems=[tea("700.00")])
    hemis_order = Sale.objects.get(contact=hemi)
    xero_site.void_invoice(str(link_of(hemis_order).xero_id))
    xero_site.create_invoice(Contact=xero_contact(hemi), LineAmountTypes="Inclusive", Date="2020-06-01",
                             DueDate="2020-06-20", LineItems=[tea("30.00")])
    run = sync_run(trigger="manual", force=True, push=False)
    assert run.failed == {}, run.errors
    return {"aroha": aroha, "mere": mere, "hemi": hemi, "tui": tui}


def figures(response) -> dict[int, tuple[str, str, str]]:
    """(lifetime invoiced, invoices, last invoice) of each listed contact, as shown."""
    html = response.content.decode()
    shown = {}
    for pk, row in rows(response).items():
        cells = dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row, flags=re.S))
        shown[pk] = (text_of(cells["lifetime_invoiced"]), text_of(cells["invoice_count"]),
                     text_of(cells["last_invoice_date"]))
    assert "Lifetime invoiced" in html
    return shown


def shown_date(value: datetime.date | None) -> str:
    return formats.date_format(value) if value else "-"


def test_contacts_show_what_xero_invoiced_them_from_the_website_and_from_xero(admin_client, customers):
    shown = figures(changelist(admin_client, Contact))
    aroha, mere, hemi, tui = (customers[name] for name in ("aroha", "mere", "hemi", "tui"))
    website_date = Sale.objects.get(contact=aroha).date
    # Aroha: 100.00 from the website plus 250.50 typed in Xero; the newer of the two dates
    assert shown[aroha.pk] == ("350.50", "2", shown_date(max(website_date, datetime.date(2026, 3, 1))))
    # Mere: her website order only; the voided and the draft invoice typed in Xero do not count
    assert shown[mere.pk] == ("40.00", "1", shown_date(Sale.objects.get(contact=mere).date))
    # Hemi: the invoice typed in Xero; his website order, voided in Xero, does not count
    assert shown[hemi.pk] == ("30.00", "1", shown_date(datetime.date(2020, 6, 1)))
    assert shown[tui.pk] == ("0.00", "0", "-")


def listed_names(client, customers, **params) -> list[str]:
    by_pk = {contact.pk: name for name, contact in customers.items()}
    return [by_pk[pk] for pk in rows(changelist(client, Contact, **params)) if pk in by_pk]


def sort_index(client, field: str) -> int:
    html = changelist(client, Contact).content.decode()
    columns = re.findall(r'<th scope="col" class="(?:sortable )?column-(\w+)', html)
    return columns.index(field) + 1  # o= counts the action checkbox as column 0


@pytest.mark.parametrize(("field", "values"), [
    ("lifetime_invoiced", {"tui": 0, "hemi": 30, "mere": 40, "aroha": 350.5}),
    ("invoice_count", {"tui": 0, "hemi": 1, "mere": 1, "aroha": 2}),
    ("last_invoice_date", {"hemi": 2020, "mere": 2026, "aroha": 2026}),
])
def test_contacts_sort_by_lifetime_invoiced_invoice_count_and_last_invoice(admin_client, customers, field, values):
    index = sort_index(admin_client, field)
    for direction, reverse_order in (("", False), ("-", True)):
        listed = [name for name in listed_names(admin_client, customers, o=f"{direction}{index}") if name in values]
        assert [values[name] for name in listed] == sorted(values.values(), reverse=reverse_order), listed


@pytest.mark.parametrize(("params", "expected"), [
    ({"lifetime": "none"}, {"tui"}),
    ({"lifetime": "under-100"}, {"mere", "hemi"}),
    ({"lifetime": "100-500"}, {"aroha"}),
    ({"lifetime": "500-plus"}, set()),
    ({"last_invoice": "lapsed"}, {"hemi"}),
    ({"last_invoice": "365"}, {"aroha", "mere"}),
])
def test_contacts_filter_by_lifetime_invoiced_and_last_invoice(admin_client, customers, params, expected):
    by_pk = {contact.pk: name for name, contact in customers.items()}
    listed = {by_pk[pk] for pk in rows(changelist(admin_client, Contact, **params)) if pk in by_pk}
    assert listed == expected


def csv_table(response) -> list[dict]:
    """The exported CSV, read as a spreadsheet reads it; the export streams, row by row."""
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_a_selection_of_contacts_exports_as_csv_with_their_figures(admin_client, customers):
    chosen = [customers["aroha"], customers["hemi"], customers["tui"]]
    response = action(admin_client, Contact, "export_csv", chosen)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="contacts.csv"' in response["Content-Disposition"]
    table = csv_table(response)
    assert [row["name"] for row in table] == ["Tui Nobody", "Hemi Parata", "Aroha Walker"]  # the list's order
    by_name = {row["name"]: row for row in table}
    assert (by_name["Aroha Walker"]["lifetime_invoiced"], by_name["Aroha Walker"]["invoices"]) == ("350.50", "2")
    assert (by_name["Hemi Parata"]["lifetime_invoiced"], by_name["Hemi Parata"]["invoices"],
            by_name["Hemi Parata"]["last_invoice"]) == ("30.00", "1", "2020-06-01")
    assert (by_name["Tui Nobody"]["lifetime_invoiced"], by_name["Tui Nobody"]["invoices"],
            by_name["Tui Nobody"]["last_invoice"]) == ("0.00", "0", "")
    assert by_name["Aroha Walker"]["email"] == "aroha.walker@example.com"


def test_the_export_respects_the_filter_the_selection_was_made_in(admin_client, customers):
    # "select all" across a filtered list exports only what the filter shows
    response = admin_client.post(reverse(CHANGELIST[Contact]) + "?lifetime=under-100", {
        "action": "export_csv", "_selected_action": [c.pk for c in customers.values()], "select_across": "1",
        "index": "0"})
    names = sorted(row["name"] for row in csv_table(response))
    assert names == ["Hemi Parata", "Mere Tane"]


def test_the_contact_picker_on_a_sale_lists_contacts_by_name_page_after_page(admin_client, xero_connected):
    # The contacts admin's figures group its rows, and Django leaves a grouped query unordered unless the
    # admin orders it: the sale form's contact picker then pages through contacts in no particular order.
    for first_name in ("Zoe", "Amy", "Mia", "Ben"):
        person(first_name)
    answer = admin_client.get(reverse("admin:autocomplete"), {
        "term": "Walker", "app_label": "ecommerce", "model_name": "sale", "field_name": "contact"})
    assert answer.status_code == 200
    # each named with what tells two of one name apart (issue 18 item 8)
    assert [result["text"] for result in answer.json()["results"]] == [
        f"{name} Walker — {name.lower()}.walker@example.com" for name in ("Amy", "Ben", "Mia", "Zoe")]


# --- Lists stay cheap as they grow ------------------------------------------------------------------------


def grow(rows_wanted: int) -> None:
    """Sales (each with its own customer) and a receipt each, card or cash, up to `rows_wanted` sales."""
    card = a_payment_method()
    while Sale.objects.count() < rows_wanted:
        n = Sale.objects.count()
        sale = order(person(f"Customer{n:03d}"), unit_amount="20.00")
        services.receipt_record(sale=sale, payment_method=card if n % 2 else cash(),
                                amount=selectors.sale_totals(sale).total)


@pytest.mark.parametrize("model", [Contact, Sale, Receipt])
def test_a_changelists_query_count_does_not_grow_with_its_rows(admin_client, xero_connected, model,
                                                                 django_assert_max_num_queries):
    # given 5 rows, some in Xero and some not yet, as the list shows them
    grow(3)
    push()
    grow(5)
    admin_client.get(reverse(CHANGELIST[model]))  # the session and content types are warm
    with CaptureQueriesContext(connection) as five:
        assert len(rows(changelist(admin_client, model))) == 5
    # when the list has 25
    grow(25)
    push()
    # then it takes no more queries
    with django_assert_max_num_queries(len(five.captured_queries)):
        assert len(rows(changelist(admin_client, model))) == 25


# --- A receipt Xero will refuse is said when it is recorded (issue 16 item 11) ------------------------------


def card():
    return a_payment_method("card", "Card")  # set to push to Xero's account 620 by xero_connected


def test_a_card_receipt_overpaying_its_sale_is_recorded_with_a_warning_that_xero_will_refuse_it(
        admin_client, xero_connected):
    # given a confirmed 40.00 sale
    sale = order(person("Aroha"))

    # when staff record a 50.00 card receipt on it, ticking "overpayment allowed"
    response = admin_client.post(reverse("admin:ecommerce_receipt_add"), {
        "sale": sale.pk, "payment_method": card().pk, "amount": "50.00", "date": timezone.localdate().isoformat(),
        "reference": "ch_over", "overpayment_allowed": "on"}, follow=True)

    # then it is recorded, and staff are told at once that Xero will not take it, and why
    assert response.redirect_chain, response.content.decode()[:500]
    assert Receipt.objects.get().amount == Decimal("50.00")
    shown = [str(message) for message in response.context["messages"]]
    assert any(f"Xero refuses payments above the amount due: this 50.00 receipt is more than the 40.00 Xero "
               f"will have outstanding on {sale.number}" in message for message in shown), shown


def test_receipts_xero_refuses_counts_only_what_goes_to_xero(xero_connected):
    from xero_sync.services.links import receipts_xero_refuses

    # given a 40.00 sale paid 30.00 in cash (which stays on the website) and 20.00 by card, overpaid
    sale = order(person("Aroha"))
    services.receipt_record(sale=sale, payment_method=cash(), amount=Decimal("30.00"))
    fits = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("20.00"),
                                   overpayment_allowed=True)
    # then the card receipt fits in what Xero has outstanding (Xero never hears of the cash), the cash is
    # not Xero's business
    assert receipts_xero_refuses(sale.receipts.all()) == {}

    # when a second card receipt pays more than the 20.00 Xero will have left
    over = services.receipt_record(sale=sale, payment_method=card(), amount=Decimal("25.00"),
                                   overpayment_allowed=True)

    # then that one, and only that one, is refused
    refused = receipts_xero_refuses([fits, over])
    assert list(refused) == [over.pk]
    assert "more than the 20.00 Xero will have outstanding" in refused[over.pk]


def test_a_card_receipt_added_on_the_sale_page_that_xero_will_refuse_is_warned_of(admin_client, xero_connected):
    from tests.ecommerce.test_admin import _form_data, _new_rows

    # given a confirmed 40.00 sale
    sale = order(person("Aroha"))
    url = reverse(CHANGE[Sale], args=[sale.pk])
    page = admin_client.get(url)

    # when staff add a 45.00 card receipt in the sale's receipts, ticking "overpayment allowed"
    data = {**_form_data(page), **_new_rows(page, "receipts", [{
        "payment_method": str(card().pk), "amount": "45.00", "overpayment_allowed": "on"}])}
    response = admin_client.post(url, data, follow=True)

    # then it is recorded with the same warning
    assert Receipt.objects.filter(sale=sale, amount=Decimal("45.00")).exists(), response.content.decode()[:300]
    shown = [str(message) for message in response.context["messages"]]
    assert any("this 45.00 receipt is more than the 40.00 Xero will have outstanding" in m for m in shown), shown
