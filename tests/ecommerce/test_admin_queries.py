"""Issue 17: every shop page in the admin asks the database a fixed number of times, whatever the size of
the table: the same queries at 10 rows and at 200 (the list shows 100 to a page), for each list plainly,
sorted, filtered and searched, and for each record's page."""

import pytest
from django.urls import reverse

from ecommerce.models import Contact, CreditNote, Invoice, Payment, Receipt, Refund, Sale
from tests.admin_volume import grow_to, queries_of

pytestmark = pytest.mark.django_db

SMALL, LARGE = 10, 200


def changelist(model, query: str = "") -> str:
    return reverse(f"admin:ecommerce_{model._meta.model_name}_changelist") + query


def same_shape_as_the_first(model):
    """The newest record shaped like the first one (the builder varies lines and Xero states by id, every
    30 ids at most), so the record's page at 200 rows shows as much as at 10."""
    first = model.objects.order_by("pk").values_list("pk", flat=True)[0]
    return max(pk for pk in model.objects.values_list("pk", flat=True) if (pk - first) % 30 == 0)


LISTS = [
    pytest.param(Contact, "", id="contacts"),
    pytest.param(Contact, "?q=Smith", id="contacts-searched-by-name"),
    pytest.param(Contact, "?q=c7%40example.com", id="contacts-searched-by-email"),
    pytest.param(Contact, "?o=-5", id="contacts-by-lifetime-invoiced"),
    pytest.param(Contact, "?o=6", id="contacts-by-invoice-count"),
    pytest.param(Contact, "?o=-7", id="contacts-by-last-invoice"),
    pytest.param(Contact, "?o=8", id="contacts-by-xero-state"),
    pytest.param(Contact, "?lifetime=under-100", id="contacts-lifetime-under-100"),
    pytest.param(Contact, "?last_invoice=90", id="contacts-invoiced-in-90-days"),
    pytest.param(Contact, "?xero=error", id="contacts-xero-error"),
    pytest.param(Contact, "?xero=pending", id="contacts-xero-pending"),
    pytest.param(Contact, "?xero=not_eligible", id="contacts-not-for-xero"),
    pytest.param(Sale, "", id="sales"),
    pytest.param(Sale, "?q=S-0", id="sales-searched-by-number"),
    pytest.param(Sale, "?q=Smith", id="sales-searched-by-contact"),
    pytest.param(Sale, "?o=-8", id="sales-by-xero-state"),
    pytest.param(Sale, "?xero=synced", id="sales-xero-synced"),
    pytest.param(Sale, "?status__exact=confirmed", id="sales-confirmed"),
    pytest.param(Receipt, "", id="receipts"),
    pytest.param(Receipt, "?q=Smith", id="receipts-searched"),
    pytest.param(Receipt, "?xero=error", id="receipts-xero-error"),
    pytest.param(Refund, "", id="refunds"),
    pytest.param(Refund, "?q=CN-", id="refunds-searched-by-number"),
    pytest.param(Refund, "?o=7", id="refunds-by-xero-state"),
    pytest.param(CreditNote, "", id="credit-notes"),
    pytest.param(Invoice, "", id="invoices"),
    pytest.param(Invoice, "?q=Smith", id="invoices-searched"),
    pytest.param(Payment, "", id="payments"),
    pytest.param(Payment, "?q=S-0", id="payments-searched"),
]


@pytest.mark.parametrize(("model", "query"), LISTS)
def test_a_shop_list_asks_the_same_queries_at_10_rows_as_at_200(admin_client, model, query):
    # given 10 of every record
    grow_to(SMALL)
    at_small = queries_of(admin_client, changelist(model, query))
    # when there are 200 (two pages of 100)
    grow_to(LARGE)
    # then the list asks no more
    assert queries_of(admin_client, changelist(model, query)) == at_small


@pytest.mark.parametrize("model", [Contact, Sale, Receipt, Refund, CreditNote, Invoice, Payment],
                         ids=lambda model: model._meta.model_name)
def test_a_records_page_asks_the_same_queries_at_10_rows_as_at_200(admin_client, model):
    def page() -> str:
        return reverse(f"admin:ecommerce_{model._meta.model_name}_change", args=[same_shape_as_the_first(model)])

    grow_to(SMALL)
    at_small = queries_of(admin_client, page())
    grow_to(LARGE)
    assert queries_of(admin_client, page()) == at_small


def test_the_lists_show_the_rows_they_count(admin_client):
    # the cheap count (no second COUNT of the whole table) still says how many the filter found
    grow_to(LARGE)
    assert queries_of(admin_client, changelist(Sale), rows_expected=LARGE) > 0
    expected = Contact.objects.filter(invoiced_total__lt=100, invoiced_total__gte="0.01").count()
    assert queries_of(admin_client, changelist(Contact, "?lifetime=under-100"), rows_expected=expected) > 0


@pytest.mark.parametrize("model", [Contact, Sale, Receipt, Refund, CreditNote, Invoice, Payment],
                         ids=lambda model: model._meta.model_name)
@pytest.mark.parametrize("term", ["Smith", "aroha smith 1", "S-0001", "c7@example", "Company 3", "zzq-none"])
def test_the_search_finds_what_djangos_own_search_over_the_search_fields_finds(rf, model, term):
    # given two pages of every record
    from django.contrib import admin

    grow_to(LARGE)
    model_admin = admin.site._registry[model]
    listed = model._default_manager.all()
    # when a term (or several, each to match) is searched with the indexed, per-set search
    ours, _ = model_admin.get_search_results(rf.get("/"), listed, term)
    # then it finds exactly the records Django's own search (a join per related field) finds
    django_own, _ = admin.ModelAdmin.get_search_results(model_admin, rf.get("/"), listed, term)
    assert set(ours.values_list("pk", flat=True)) == set(django_own.values_list("pk", flat=True))
