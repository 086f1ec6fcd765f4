"""The records with no link in the current organisation, kept by PostgreSQL triggers
(xero_sync.services.unlinked) for the admin's Xero column: after every kind of write, the same set as
the anti-join of each record table against the links, which is what the column means."""

import logging
import uuid
from decimal import Decimal as D

import psycopg2
import pytest
from django.db import connection
from django.db.models import Exists, OuterRef

from ecommerce import services
from ecommerce.models import Contact, Receipt, Sale
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.models import RecordKind, UnlinkedTenant, XeroLink
from xero_sync.services.unlinked import XERO_MODELS, unlinked_ids

# PostgreSQL only (the triggers): the marker skips elsewhere, and fails under CI without it.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()


def without_link(kind: str, tenant) -> set[int]:
    """The definition: the records of `kind` that no link of `tenant` names."""
    links = XeroLink.objects.filter(tenant_id=tenant, kind=kind, local_id=OuterRef("pk"))
    return set(XERO_MODELS[kind].objects.filter(~Exists(links)).values_list("pk", flat=True))


def kept(kind: str, tenant=TENANT) -> set[int]:
    ids = unlinked_ids(kind, tenant)
    assert ids is not None, "the set is kept on PostgreSQL"
    return set(ids)


def assert_agrees(tenant=TENANT) -> None:
    for kind in XERO_MODELS:
        assert kept(kind, tenant) == without_link(kind, tenant), kind


def link(kind: str, pk: int, tenant=TENANT) -> XeroLink:
    return XeroLink.objects.create(tenant_id=tenant, kind=kind, local_id=pk, xero_id=uuid.uuid4())


def paid_sale() -> Sale:
    sale = a_sale(lines=[{"description": "Cap", "quantity": D("1"), "unit_amount": D("20.00"), "tax_rate": D("15")}])
    services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=D("20.00"))
    return sale


def test_the_set_is_filled_from_the_records_already_there_then_follows_every_write():
    # given records made before anyone asked, some linked (in this organisation and in another)
    first, second = paid_sale(), paid_sale()
    link(RecordKind.SALE, first.pk)
    link(RecordKind.CONTACT, first.contact_id)
    link(RecordKind.SALE, second.pk, tenant=OTHER)
    # then the first question fills it with exactly the records with no link here
    assert_agrees()
    assert second.pk in kept(RecordKind.SALE) and first.pk not in kept(RecordKind.SALE)

    # when records are added afterwards, one at a time and in bulk
    third = paid_sale()
    Contact.objects.bulk_create([Contact(first_name="Bulk", last_name=str(n), email=f"b{n}@example.com") for n in range(5)])
    assert_agrees()
    assert third.pk in kept(RecordKind.SALE)
    # when links are made, one at a time and in bulk, and one is made for another organisation
    link(RecordKind.SALE, third.pk)
    XeroLink.objects.bulk_create([XeroLink(tenant_id=TENANT, kind=RecordKind.RECEIPT, local_id=pk, xero_id=uuid.uuid4())
                                  for pk in Receipt.objects.values_list("pk", flat=True)])
    link(RecordKind.CONTACT, third.contact_id, tenant=OTHER)
    assert_agrees()
    assert third.pk not in kept(RecordKind.SALE) and kept(RecordKind.RECEIPT) == set()
    # when links change state in bulk (as every push does), nothing changes
    XeroLink.objects.filter(tenant_id=TENANT).update(state=XeroLink.State.ERROR, last_error="x")
    assert_agrees()
    # when a link is deleted, its record has no link again; when one is re-pointed, both records move
    XeroLink.objects.filter(tenant_id=TENANT, kind=RecordKind.SALE, local_id=first.pk).delete()
    XeroLink.objects.filter(tenant_id=TENANT, kind=RecordKind.SALE, local_id=third.pk).update(local_id=second.pk)
    assert_agrees()
    assert {first.pk, third.pk} <= kept(RecordKind.SALE) and second.pk not in kept(RecordKind.SALE)
    # when records are deleted, linked or not
    Receipt.objects.filter(sale__in=[first, second]).delete()
    Sale.objects.filter(pk__in=[first.pk, second.pk]).delete()
    Contact.objects.filter(first_name="Bulk").delete()
    assert_agrees()
    # when a refund is recorded (its own kind of record)
    services.refund_record(sale=third, payment_method=a_payment_method())
    assert_agrees()
    assert len(kept(RecordKind.REFUND)) == 1


def test_asking_for_another_organisation_keeps_its_set_instead():
    sale = paid_sale()
    link(RecordKind.SALE, sale.pk)
    assert_agrees(TENANT)
    # when the shop is connected to another organisation and the admin asks for that one
    assert_agrees(OTHER)
    # then only that one's set is kept, and it is that organisation's (nothing is linked there)
    assert list(UnlinkedTenant.objects.values_list("tenant_id", flat=True)) == [OTHER]
    assert sale.pk in kept(RecordKind.SALE, OTHER)
    # and going back fills the first one's again
    assert_agrees(TENANT)
    assert sale.pk not in kept(RecordKind.SALE, TENANT)


def test_emptying_the_links_table_forgets_the_set_and_the_next_question_fills_it_again():
    sale = paid_sale()
    link(RecordKind.SALE, sale.pk)
    assert_agrees()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE xero_sync_xerolink CASCADE")
    assert not UnlinkedTenant.objects.exists()
    assert_agrees()
    assert sale.pk in kept(RecordKind.SALE)


@pytest.mark.django_db(transaction=True)
def test_a_writer_holding_its_table_is_not_kept_waiting_the_admin_reads_the_anti_join_instead(caplog):
    # given a writer in another session in the middle of a transaction on the sales table
    a_contact()
    settings = connection.settings_dict
    writer = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"],
                              port=settings["PORT"] or 5432, password=settings["PASSWORD"] or None)
    try:
        with writer.cursor() as cursor:
            cursor.execute("LOCK TABLE ecommerce_sale IN ROW EXCLUSIVE MODE")
            # when the admin first asks for the set, it cannot fill it without waiting on the writer
            with caplog.at_level(logging.INFO, logger="xero_sync"):
                assert unlinked_ids(RecordKind.SALE, TENANT) is None
            assert not UnlinkedTenant.objects.exists()
            # and says so in the log as the ordinary event it is, not as a warning
            [record] = [r for r in caplog.records if "not filled yet" in r.getMessage()]
            assert record.levelno == logging.INFO
        writer.rollback()
    finally:
        writer.close()
    # then once the writer is done, the next question fills it
    assert_agrees()
