"""What the receivers record: a save of a field Xero holds records its record, nothing else does.

The fields that count (`receivers.XERO_FIELDS`) are built from the mappers' declarations of what each
payload reads; the first tests hold those declarations to the payloads, without a database: every declared
field changes the payload (or Xero's refusal of it), and no other field of the model does.
"""

import datetime
from decimal import Decimal

import pytest
from django.db import models, transaction

from ecommerce import services, totals
from ecommerce.models import Contact, Receipt, Refund, Sale, SaleLine
from ecommerce.signals import sale_lines_replaced
from tests.ecommerce.factories import a_contact, a_sale
from xero_sync import mappers
from xero_sync.models import OutboxEntry, RecordKind
from xero_sync.receivers import XERO_FIELDS, connect_receivers, disconnect_receivers

WHEN = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
CONTACT_XERO_IDS = {7: "c0000000-0000-0000-0000-000000000007", 8: "c0000000-0000-0000-0000-000000000008"}
INVOICE_XERO_IDS = {3: "a0000000-0000-0000-0000-000000000003", 4: "a0000000-0000-0000-0000-000000000004"}
PAYMENT_ACCOUNTS = {1: "620", 2: "090"}


class EveryTaxCode(dict):
    """Tax mapping that knows every code (so a changed code maps to a changed Xero tax type)."""

    def get(self, code, default=None):
        return f"TAX-{code}"


# --- The payloads as the push builds them ----------------------------------------------------------------


def contact_outcome(contact: Contact):
    return mappers.contact_payload(contact, name=contact.display_name)


def sale_outcome(sale: Sale, lines: list[SaleLine]):
    own = sorted((line for line in lines if line.sale_id == sale.pk), key=lambda line: line.position)
    try:
        return mappers.invoice_payload(sale, own, contact_xero_id=CONTACT_XERO_IDS[sale.contact_id],
                                       sales_account="200", shipping_account="205", tax_types=EveryTaxCode(),
                                       tax_rates={"TAX-GST": Decimal("15")})
    except mappers.MappingError as refused:  # what Xero is told includes what we refuse to send
        return ("refused", str(refused))


def receipt_outcome(receipt: Receipt):
    return mappers.payment_payload(receipt, invoice_xero_id=INVOICE_XERO_IDS[receipt.sale_id],
                                   account_code=PAYMENT_ACCOUNTS[receipt.payment_method_id])


def a_contact_record(**fields) -> Contact:
    return Contact(pk=7, first_name="Aroha", last_name="Walker", company_name="", email="aroha@example.com",
                   phone="021 555 0100", address_line1="1 Queen St", address_line2="Level 2", city="Auckland",
                   region="Auckland", postcode="1010", country="NZ", created_at=WHEN, updated_at=WHEN, **fields)


def a_sale_record() -> Sale:
    return Sale(pk=3, number="S-000003", contact_id=7, date=WHEN.date(), due_date=WHEN.date(), currency="NZD",
                line_amount_type=totals.EXCLUSIVE, status=Sale.Status.CONFIRMED, reference="PO 1", notes="",
                created_at=WHEN, updated_at=WHEN)


def a_line_record(pk: int, position: int, description: str) -> SaleLine:
    return SaleLine(pk=pk, sale_id=3, position=position, kind=SaleLine.Kind.ITEM, description=description,
                    quantity=Decimal("2"), unit_amount=Decimal("39.95"), discount_rate=Decimal("0"),
                    tax_rate=Decimal("15"), tax_code="GST", account_code="", item_code="BEANIE")


def a_receipt_record() -> Receipt:
    return Receipt(pk=5, sale_id=3, payment_method_id=1, amount=Decimal("89.40"), date=WHEN.date(),
                   reference="Card", overpayment_allowed=False, created_at=WHEN, updated_at=WHEN)


def another(field: models.Field, value):
    """A different value the field could hold."""
    if field.choices:
        return next(choice for choice, _ in field.choices if choice != value)
    if isinstance(field, models.BooleanField):
        return not value
    if isinstance(field, models.DecimalField):
        return value + 1
    if value is None and isinstance(field, models.DateTimeField):
        return WHEN
    if value is None and isinstance(field, models.DateField):
        return WHEN.date()
    if isinstance(field, models.DateTimeField):
        return value + datetime.timedelta(days=1)
    if isinstance(field, models.DateField):
        return value + datetime.timedelta(days=1)
    if isinstance(field, models.ForeignKey):
        return value + 1  # the next record: another contact, sale or payment method
    if isinstance(field, models.IntegerField):
        return value + 10  # far enough to move a line past the next
    if isinstance(field, models.EmailField):
        return "someone.else@example.org"
    if isinstance(field, models.CharField | models.TextField):
        return value + "x"
    raise AssertionError(f"no other value for {field!r}")


def fields_that_change(model, build, outcome) -> set[str]:
    """The fields of `model` (attnames, the primary key aside) whose change alone changes the outcome."""
    changing = set()
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        records = build()
        record = records[0]
        before = outcome(*records)
        setattr(record, field.attname, another(field, getattr(record, field.attname)))
        if outcome(*records) != before:
            changing.add(field.attname)
    return changing


def test_xero_fields_are_what_the_mappers_read_and_what_decides_whether_a_record_goes():
    assert XERO_FIELDS == {
        Contact: mappers.CONTACT_FIELDS_SENT,
        Sale: (*mappers.SALE_FIELDS_SENT, "status"),  # a sale goes to Xero once confirmed
        SaleLine: mappers.SALE_LINE_FIELDS_SENT,
        Receipt: mappers.RECEIPT_FIELDS_SENT,
        Refund: mappers.REFUND_FIELDS_SENT,
    }


def test_the_contact_fields_declared_are_exactly_those_that_change_its_payload():
    changing = fields_that_change(Contact, lambda: [a_contact_record()], contact_outcome)
    assert changing == set(mappers.CONTACT_FIELDS_SENT)


def test_the_sale_fields_declared_are_exactly_those_that_change_its_invoice():
    def build():
        return [a_sale_record(), [a_line_record(1, 1, "Beanie"), a_line_record(2, 2, "Scarf")]]

    changing = fields_that_change(Sale, build, sale_outcome)
    assert changing == set(mappers.SALE_FIELDS_SENT)


def test_the_line_fields_declared_are_exactly_those_that_change_its_sales_invoice():
    def build():
        lines = [a_line_record(1, 1, "Beanie"), a_line_record(2, 2, "Scarf")]
        return [lines[0], a_sale_record(), lines]

    def outcome(line, sale, lines):
        return sale_outcome(sale, lines)

    changing = fields_that_change(SaleLine, build, outcome)
    assert changing == set(mappers.SALE_LINE_FIELDS_SENT)


def test_the_receipt_fields_declared_are_exactly_those_that_change_its_payment():
    changing = fields_that_change(Receipt, lambda: [a_receipt_record()], receipt_outcome)
    assert changing == set(mappers.RECEIPT_FIELDS_SENT)


# --- Recording -------------------------------------------------------------------------------------------


def rows() -> list[tuple[str, int]]:
    return list(OutboxEntry.objects.order_by("id").values_list("kind", "local_id"))


LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
        "tax_rate": Decimal("15"), "tax_code": "GST"}


@pytest.mark.django_db
def test_replacing_a_sales_lines_records_the_sale():
    # given a confirmed sale, its creation already recorded
    sale = a_sale(contact=a_contact(), lines=[LINE, LINE])
    OutboxEntry.objects.all().delete()

    # when only its lines change
    services.sale_update(sale=sale, lines=[{**LINE, "quantity": Decimal("5")}])

    # then the sale is recorded, once
    assert rows() == [(RecordKind.SALE, sale.pk)]


@pytest.mark.django_db
def test_the_shops_lines_replaced_signal_records_the_sale_until_recording_is_switched_off():
    sale = a_sale(contact=a_contact(), lines=[LINE])
    OutboxEntry.objects.all().delete()

    with transaction.atomic():
        sale_lines_replaced.send(sender=Sale, sale=sale)
    assert rows() == [(RecordKind.SALE, sale.pk)]

    disconnect_receivers()
    try:
        with transaction.atomic():
            sale_lines_replaced.send(sender=Sale, sale=sale)
    finally:
        connect_receivers()
    assert rows() == [(RecordKind.SALE, sale.pk)]


@pytest.mark.django_db
def test_a_line_field_xero_never_sees_records_nothing_and_one_it_does_records_the_sale():
    sale = a_sale(contact=a_contact(), lines=[LINE])
    line = SaleLine.objects.get(sale=sale)
    OutboxEntry.objects.all().delete()

    # when only the line's item code changes (the invoice does not carry it)
    line.item_code = "BEANIE-RED"
    line.save()
    assert rows() == []

    # when its description changes
    line.description = "Merino beanie, red"
    line.save()
    assert rows() == [(RecordKind.SALE, sale.pk)]


@pytest.mark.django_db
def test_loading_records_partly_costs_no_query_and_saving_one_counts_as_a_change(django_assert_num_queries):
    # given contacts in the database
    contacts = [a_contact(first_name=f"Tui{n}") for n in range(3)]
    OutboxEntry.objects.all().delete()

    # when they are loaded without most of their fields
    with django_assert_num_queries(1):
        partly = list(Contact.objects.only("id", "first_name").order_by("id"))
    assert [contact.pk for contact in partly] == [contact.pk for contact in contacts]

    # then saving one records it: what it held before is unknown, so it may have changed
    partly[0].save()
    assert rows() == [(RecordKind.CONTACT, contacts[0].pk)]

    # and a fully loaded one saved unchanged records nothing
    Contact.objects.get(pk=contacts[1].pk).save()
    assert rows() == [(RecordKind.CONTACT, contacts[0].pk)]
