"""Who said a record's error: recorded on its link where the error is written (XeroLink.error_by), and the
label staff read ("Xero says" / "This site's check (not sent to Xero)") follows it, not the error's words."""

import importlib
import re
from decimal import Decimal
from html import unescape

import pytest
from django.apps import apps
from django.urls import reverse

from ecommerce import services
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.models import RecordKind, XeroLink
from xero_sync.services.links import links_requeue
from xero_sync.services.sync import sync_run
from xero_sync.wording import SITE_SAYS, XERO_SAYS, said_by

pytestmark = pytest.mark.django_db

ErrorBy, State = XeroLink.ErrorBy, XeroLink.State
# A line booked to an "account" whose code is one of the site's own phrases: Xero refuses it, echoing the code.
SITE_WORDS_FROM_XERO = "Account code 'Waiting for sale' is not a valid code for this document."


def line(**fields) -> dict:
    return {"description": "Merino beanie", "quantity": Decimal("1"), "unit_amount": Decimal("40.00"),
            "tax_code": "GST", "tax_rate": Decimal("15"), **fields}


def order(**line_fields):
    return a_sale(contact=a_contact(first_name="Tui", last_name="Ngata"), lines=[line(**line_fields)])


def push():
    run = sync_run(trigger="manual", force=True, pull=False)
    assert run is not None, "the sync did not run"
    return run


def link_of(kind, record) -> XeroLink:
    return XeroLink.objects.get(kind=kind, local_id=record.pk)


def text_of(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return text_of(response.content.decode())


@pytest.fixture
def set_up(xero_connected):
    """An organisation that has received a sale, so a sale that cannot go fails alone."""
    order()
    assert push().failed == {}
    return xero_connected


def test_xeros_refusal_in_words_like_a_site_check_is_labelled_xero_says_everywhere(admin_client, set_up):
    # given a sale Xero refuses with a message that holds one of the site's own phrases ("Waiting for sale")
    sale = order(account_code="Waiting for sale")
    # when it is pushed
    push()
    # then the link records that Xero said it
    link = link_of(RecordKind.SALE, sale)
    assert link.state == State.ERROR and SITE_WORDS_FROM_XERO in link.last_error
    assert link.error_by == ErrorBy.XERO
    # and every page staff read says so: the label follows who said it, not the words
    label = f"{XERO_SAYS}: {SITE_WORDS_FROM_XERO}"
    panel = page(admin_client, reverse("admin:ecommerce_sale_change", args=[sale.pk]))
    assert f"{XERO_SAYS} {SITE_WORDS_FROM_XERO}" in panel and SITE_SAYS not in panel
    assert label in page(admin_client, reverse("admin:ecommerce_sale_changelist"))
    assert label in page(admin_client, reverse("admin:xero_sync_xerolink_changelist"))
    settings_page = page(admin_client, reverse("xero_sync:settings"))
    assert label in settings_page and SITE_SAYS not in settings_page


def test_a_check_of_this_site_before_sending_is_labelled_as_the_sites(admin_client, set_up):
    # given a sale whose tax code is not mapped, and a card receipt on it, which waits for the sale
    sale = order(tax_code="GST15")
    receipt = services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=Decimal("10.00"))
    # when they are pushed
    push()
    # then neither was sent, and both say this site's check said so
    for kind, record in ((RecordKind.SALE, sale), (RecordKind.RECEIPT, receipt)):
        link = link_of(kind, record)
        assert link.state == State.ERROR and link.error_by == ErrorBy.SITE, link.last_error
    assert "Waiting for sale" in link_of(RecordKind.RECEIPT, receipt).last_error
    panel = page(admin_client, reverse("admin:ecommerce_sale_change", args=[sale.pk]))
    assert f"{SITE_SAYS} " in panel and "GST15" in panel and XERO_SAYS not in panel


def test_a_receipt_changed_after_it_reached_xero_is_the_sites_check_since_nothing_is_sent(set_up):
    # given a card receipt in Xero, then changed on the website
    sale = order()
    receipt = services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=Decimal("10.00"))
    push()
    receipt.amount = Decimal("15.00")
    receipt.full_clean()
    receipt.save()
    # when it is pushed again
    push()
    # then the push holds it back itself: Xero payments cannot be edited, and it was not sent
    link = link_of(RecordKind.RECEIPT, receipt)
    assert link.state == State.CONFLICT and "Xero payments cannot be edited" in link.last_error
    assert link.error_by == ErrorBy.SITE


def test_an_error_gone_takes_who_said_it_with_it(set_up):
    # given a sale Xero refused
    sale = order(account_code="999")
    push()
    assert link_of(RecordKind.SALE, sale).error_by == ErrorBy.XERO
    # when staff send it again, it has no error and no one who said one
    links_requeue(links=XeroLink.objects.filter(kind=RecordKind.SALE, local_id=sale.pk))
    link = link_of(RecordKind.SALE, sale)
    assert (link.last_error, link.error_by) == ("", "")
    # and once corrected and synced, neither comes back
    services.sale_update(sale=sale, lines=[line()])
    push()
    link = link_of(RecordKind.SALE, sale)
    assert (link.state, link.last_error, link.error_by) == (State.SYNCED, "", "")


def test_said_by_reads_the_links_field():
    assert said_by(ErrorBy.SITE) == SITE_SAYS
    assert said_by(ErrorBy.XERO) == XERO_SAYS
    # an error stored without saying who reads as Xero's, as before the field
    assert said_by("") == XERO_SAYS


def test_the_migration_sorts_the_errors_already_stored_by_the_old_phrases_once():
    # given links stored before the field: errors in the site's phrases, Xero's words, and none
    migration = importlib.import_module("xero_sync.migrations.0012_xerolink_error_by")
    tenant = "00000000-0000-0000-0000-000000000001"
    errors = {
        1: "Tax code 'GST15' is not mapped to a Xero tax type on the settings page.",
        2: "Waiting for sale S-000002 to reach Xero: not sent",
        3: "Waiting for its contact, which is not in Xero yet: not sent",
        4: "Xero refuses payments above the amount due: ... Xero will have outstanding on S-000004 ...",
        5: "Account code '999' is not a valid code for this document.",
        6: "waiting for sale (not the site's words: the old rule matched case and all)",
        7: "",
    }
    XeroLink.objects.bulk_create(XeroLink(tenant_id=tenant, kind=RecordKind.SALE, local_id=local_id,
                                          last_error=error, error_by="") for local_id, error in errors.items())
    # when the migration's data step runs
    migration.error_by_from_the_words(apps, None)
    # then each says who said it as the admin used to tell, and a link without an error says no one
    found = dict(XeroLink.objects.filter(tenant_id=tenant).values_list("local_id", "error_by"))
    assert found == {1: "site", 2: "site", 3: "site", 4: "site", 5: "xero", 6: "xero", 7: ""}
