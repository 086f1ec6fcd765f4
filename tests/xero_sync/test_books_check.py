"""The books check against the emulator: a clean month agrees; each kind of difference a bookkeeper's action
in Xero (or a failure left unresolved) makes appears once, explained correctly, and goes once it is fixed."""

import datetime
from decimal import Decimal as D

import pytest
from django.utils import timezone

from ecommerce import services
from tests.ecommerce.factories import a_contact
from tests.xero_sync.test_push import card, item, xero_invoice
from tests.xero_sync.test_refunds import fresh, paid_by_card
from xero_sync.models import RecordKind, XeroLink
from xero_sync.services.books_check import books_check, months_back
from xero_sync.services.links import links_send_now
from xero_sync.services.sync import sync_run

pytestmark = pytest.mark.django_db


def sync():
    run = sync_run(trigger="manual", force=True)
    assert run is not None, "the sync did not run"
    return run


def a_sale_on(day: datetime.date, *lines, **fields):
    return services.sale_create(contact=fields.pop("contact", None) or a_contact(), confirm=True, date=day,
                                lines=list(lines) or [item("Cap", "3", "33.33")], **fields)


def check(connection, day):
    [month] = books_check(tenant_id=connection.tenant_id, month=day)
    return month


def words(month) -> list[str]:
    return [difference.words for difference in month.differences]


def test_a_clean_year_agrees(xero_connected, xero_site):
    today = timezone.localdate()
    months = months_back(12, today=today)
    for index, month in enumerate(months):
        sale = paid_by_card(a_sale_on(month + datetime.timedelta(days=index % 27)))
        if index % 3 == 0:
            [cap] = sale.lines.all()
            services.refund_record(sale=sale, payment_method=card(), lines=[{"line": cap, "quantity": D("1")}])
        if index % 4 == 1:
            services.sale_cancel(sale=a_sale_on(month), refund_to=None)
    sync()
    sync()
    for month in months:
        result = check(xero_connected, month)
        assert result.differences == [], (month, words(result))
        assert result.agrees and result.sales >= 1 and result.in_xero >= 1
    # a refund counts in the month it was given: the four made today (one cap of three each) are this month's
    assert check(xero_connected, months[0]).refunded == D("133.32")


def test_an_invoice_edited_in_xero_is_one_unexplained_difference_until_put_back(xero_connected, xero_site):
    sale = a_sale_on(timezone.localdate())
    sync()
    invoice = xero_invoice(xero_site, sale.number)
    original_lines = invoice["LineItems"]
    xero_site.edit_invoice(invoice["InvoiceID"], LineItems=[
        {"Description": "Cap", "Quantity": 3, "UnitAmount": "30.00", "AccountCode": "200", "TaxType": "OUTPUT2"}])
    sync()

    month = check(xero_connected, sale.date)
    [difference] = month.differences
    assert not difference.explained and difference.record == sale.number
    assert difference.words.startswith(f"{sale.number}: website 99.99, Xero 90.00 — Xero's invoice edited on ")
    assert difference.website_url.endswith(f"/admin/ecommerce/sale/{sale.pk}/change/")

    xero_site.edit_invoice(invoice["InvoiceID"], LineItems=original_lines)
    sync()
    assert check(xero_connected, sale.date).differences == []


def test_a_payment_deleted_in_xero_shows_until_sent_again(xero_connected, xero_site):
    sale = paid_by_card(a_sale_on(timezone.localdate()))
    sync()
    receipt = sale.receipts.get()
    xero_site.delete_payment(str(XeroLink.objects.get(kind=RecordKind.RECEIPT, local_id=receipt.pk).xero_id))
    sync()

    month = check(xero_connected, sale.date)
    [difference] = month.unexplained
    assert "its payment was deleted in Xero" in difference.words and difference.record.startswith("WEB-R")

    links_send_now(kind=RecordKind.RECEIPT, local_ids=[receipt.pk])
    sync()
    assert check(xero_connected, sale.date).differences == []


def test_an_invoice_voided_in_xero_shows_until_the_sale_is_cancelled_too(xero_connected, xero_site):
    sale = a_sale_on(timezone.localdate())
    sync()
    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()

    [difference] = check(xero_connected, sale.date).unexplained
    assert difference.words.startswith(f"{sale.number}: confirmed on the website, invoice VOIDED in Xero on ")

    services.sale_cancel(sale=sale)
    sync()
    assert check(xero_connected, sale.date).differences == []


def test_a_payment_in_xero_the_website_does_not_know_shows_until_removed(xero_connected, xero_site):
    sale = a_sale_on(timezone.localdate())
    sync()
    deposit = xero_site.record_bank_payment(xero_invoice(xero_site, sale.number)["InvoiceID"], amount="50.00",
                                            account_code="090")
    sync()

    [difference] = check(xero_connected, sale.date).unexplained
    assert difference.words == (f"{sale.number}: paid on the website 0.00, in Xero 50.00 — a payment in Xero the "
                                "website does not know")

    xero_site.delete_payment(deposit["PaymentID"])
    sync()
    assert check(xero_connected, sale.date).differences == []


def test_a_refusal_left_unresolved_is_unexplained_and_a_change_still_waiting_is_explained(xero_connected, xero_site):
    # given a sale whose line books to an account Xero does not have, refused by Xero and left so
    refused = a_sale_on(timezone.localdate(), item("Cap", "1", "10.00", account_code="299"))
    sync()
    [difference] = check(xero_connected, refused.date).differences
    assert not difference.explained
    assert difference.words.startswith(f"{refused.number}: website 10.00, not in Xero — not synced: ")
    assert "299" in difference.words

    # when staff correct the line (the default sales account), the corrected sale waits for its run
    services.sale_update(sale=refused, lines=[{"id": refused.lines.get().pk, **item("Cap", "1", "10.00",
                                                                                   account_code="")}])
    [waiting] = check(xero_connected, refused.date).differences
    assert waiting.explained and "waiting for its sync run" in waiting.words

    sync()
    assert check(xero_connected, refused.date).differences == []
    assert fresh(refused).invoices.get().total == D("10.00")


def test_a_refund_whose_payment_was_deleted_in_xero_is_a_difference(xero_connected, xero_site):
    sale = paid_by_card(a_sale_on(timezone.localdate()))
    sync()
    refund = services.refund_record(sale=sale, payment_method=card())
    sync()
    assert check(xero_connected, sale.date).differences == []
    xero_site.delete_payment(str(XeroLink.objects.get(kind=RecordKind.REFUND_PAYMENT, local_id=refund.pk).xero_id))
    sync()

    [difference] = check(xero_connected, sale.date).unexplained
    assert difference.record == refund.number and "refund payment of 99.99 was deleted in Xero" in difference.words


def test_checking_against_xero_now_fetches_the_month_within_its_call_budget(xero_connected, xero_site):
    from xero_sync.services.books_refresh import books_refresh_month

    today = timezone.localdate()
    sales = [a_sale_on(today) for _ in range(3)]
    sync()
    # the bookkeeper edits one in Xero after the last pull: the local copy does not know yet
    invoice = xero_invoice(xero_site, sales[0].number)
    xero_site.edit_invoice(invoice["InvoiceID"], LineItems=[
        {"Description": "Cap", "Quantity": 3, "UnitAmount": "30.00", "AccountCode": "200", "TaxType": "OUTPUT2"}])
    assert check(xero_connected, today).differences == []

    xero_site.reset_calls()
    run = books_refresh_month(month=today)

    assert run.calls <= 1 + 3  # ceil(3 invoices / 1000) + 3
    [difference] = check(xero_connected, today).unexplained
    assert difference.record == sales[0].number and "Xero 90.00" in difference.words


def test_a_new_unexplained_difference_reaches_admins_once(xero_connected, xero_site, mailoutbox, settings,
                                                          django_capture_on_commit_callbacks):
    from xero_sync.services.books_check import books_check_watch
    from xero_sync.services.notify import digest_send

    settings.ADMINS = [("Owner", "owner@example.com")]
    sale = a_sale_on(timezone.localdate())
    sync()
    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()
    months = months_back(2)

    assert len(books_check_watch(tenant_id=xero_connected.tenant_id, months=months)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        subject = digest_send()
    assert subject == "Xero sync: the books differ from Xero's"
    [mail] = mailoutbox
    assert f"{sale.number}: confirmed on the website, invoice VOIDED in Xero" in mail.body
    # the next day's check finds the same difference: nothing new to tell
    assert books_check_watch(tenant_id=xero_connected.tenant_id, months=months) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert digest_send() is None
    assert len(mailoutbox) == 1


# --- The Books check page -------------------------------------------------------------------------------


def test_the_books_check_page_shows_twelve_months_green_and_a_differing_month_one_click_away(
        xero_connected, xero_site, admin_client):
    sale = a_sale_on(timezone.localdate())
    sync()
    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()

    page = admin_client.get("/xero/books/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="books-agree"') == 11 and html.count('class="books-differ"') == 1
    assert "1 to look at" in html

    month = admin_client.get(f"/xero/books/?month={sale.date:%Y-%m}").content.decode()
    assert f"{sale.number}: confirmed on the website, invoice VOIDED in Xero" in month
    assert f'href="/admin/ecommerce/sale/{sale.pk}/change/"' in month
    assert "Open in Xero" in month and "Needs a look" in month


def test_check_against_xero_now_fetches_the_month_and_says_so(xero_connected, xero_site, admin_client):
    sale = a_sale_on(timezone.localdate())
    sync()
    answer = admin_client.post("/xero/books/fresh/", {"month": f"{sale.date:%Y-%m}"}, follow=True)
    assert answer.redirect_chain[-1][0] == f"/xero/books/?month={sale.date:%Y-%m}"
    assert f"Fetched {sale.date:%B %Y} from Xero again" in answer.content.decode()


def test_the_books_check_page_refuses_a_month_it_cannot_read_and_staff_without_manage_xero(
        xero_connected, admin_client, client, django_user_model):
    assert admin_client.get("/xero/books/?month=2026-13").status_code == 404
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get("/xero/books/").status_code == 403
    assert client.post("/xero/books/fresh/", {"month": "2026-11"}).status_code == 403


def test_the_table_shows_the_last_check_until_checked_again(xero_connected, xero_site, admin_client):
    from xero_sync.models import BooksCheckMonth

    sale = a_sale_on(timezone.localdate())
    sync()
    admin_client.get("/xero/books/")
    first = BooksCheckMonth.objects.get(month=sale.date.replace(day=1))
    assert (first.sales, first.unexplained) == (1, 0)

    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()
    admin_client.get("/xero/books/")  # a second visit shows the stored figures, checks nothing
    assert BooksCheckMonth.objects.get(pk=first.pk).checked_at == first.checked_at

    admin_client.post("/xero/books/again/")
    again = BooksCheckMonth.objects.get(pk=first.pk)
    assert again.unexplained == 1 and again.checked_at > first.checked_at


# --- xero_sync books-check ------------------------------------------------------------------------------


def test_the_command_prints_the_table_and_exits_non_zero_on_an_unexplained_difference(
        xero_connected, xero_site, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    sale = a_sale_on(timezone.localdate())
    sync()
    call_command("xero_sync", "books-check")  # agrees: exits 0
    out = capsys.readouterr().out
    assert f"{sale.date:%Y-%m}    NZD       1" in out and "agrees" in out

    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()
    with pytest.raises(CommandError) as failed:
        call_command("xero_sync", "books-check", "--month", f"{sale.date:%Y-%m}", "--fresh")
    assert failed.value.returncode == 1
    out = capsys.readouterr().out
    assert f"Fetched {sale.date:%B %Y} from Xero again" in out
    assert f"! {sale.number}: confirmed on the website, invoice VOIDED in Xero" in out


def test_the_command_refuses_fresh_without_a_month_and_a_month_it_cannot_read(xero_connected):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as refused:
        call_command("xero_sync", "books-check", "--fresh")
    assert refused.value.returncode == 2 and "--fresh needs --month" in str(refused.value)
    with pytest.raises(CommandError, match="is not a month"):
        call_command("xero_sync", "books-check", "--month", "March")


def test_the_daily_task_checks_this_month_and_the_last_once_a_day(xero_connected, xero_site):
    import datetime as dt

    from xero_sync.models import BooksCheckMonth, SyncEvent
    from xero_sync.services.books_check import BOOKS_DIFFER
    from xero_sync.services.schedule import books_check_daily
    from xero_sync.tasks import sync_daily

    sale = a_sale_on(timezone.localdate())
    sync()
    xero_site.void_invoice(xero_invoice(xero_site, sale.number)["InvoiceID"])
    sync()

    sync_daily.apply()
    assert set(BooksCheckMonth.objects.values_list("month", flat=True)) == set(months_back(2))
    assert SyncEvent.objects.filter(action=BOOKS_DIFFER).count() == 1
    assert books_check_daily() is None  # within the day: not again
    assert books_check_daily(timezone.now() + dt.timedelta(hours=25)) == []  # a day on: checked, nothing new


def test_a_sale_cancelled_on_the_website_while_its_invoice_is_still_approved_in_xero(xero_connected, xero_site):
    sale = a_sale_on(timezone.localdate())
    sync()
    services.sale_cancel(sale=sale)

    # waiting for the run that voids it: expected
    [waiting] = check(xero_connected, sale.date).differences
    assert waiting.explained
    assert waiting.words == (f"{sale.number}: cancelled on the website, invoice still AUTHORISED in Xero — "
                             "waiting for its sync run")
    # the run voids it: nothing differs
    sync()
    assert check(xero_connected, sale.date).differences == []
