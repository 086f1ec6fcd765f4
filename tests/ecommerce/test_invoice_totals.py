"""A contact's invoiced figures kept on its row (issue 17): what the pull calls once per page."""

import datetime
import uuid
from decimal import Decimal as D

import pytest
from django.utils import timezone

from ecommerce import services
from ecommerce.invoice_totals import contact_invoice_totals_refresh, contact_invoice_totals_refresh_all
from ecommerce.models import Contact, Invoice

pytestmark = pytest.mark.django_db


def invoice(contact: Contact, total: str, *, status=Invoice.Status.AUTHORISED, date=datetime.date(2026, 3, 1)):
    return Invoice.objects.create(
        xero_id=uuid.uuid4(), number=f"INV-{uuid.uuid4().hex[:6]}", contact=contact, status=status, date=date,
        currency="NZD", line_amount_type="inclusive", subtotal=D(total), total_tax=D("0"), total=D(total),
        amount_due=D(total), amount_paid=D("0"), updated_in_xero_at=timezone.now())


def figures(contact: Contact) -> tuple:
    contact.refresh_from_db()
    return contact.invoiced_total, contact.invoice_count, contact.last_invoice_date


def test_the_figures_count_what_the_accounts_invoiced_and_follow_an_invoice_moved_to_another_contact():
    aroha = services.contact_create(first_name="Aroha", last_name="Walker")
    mere = services.contact_create(first_name="Mere", last_name="Tane")
    moved = invoice(aroha, "100.00", date=datetime.date(2026, 3, 1))
    invoice(aroha, "250.50", date=datetime.date(2026, 4, 1))
    invoice(aroha, "900.00", status=Invoice.Status.VOIDED, date=datetime.date(2026, 5, 1))
    invoice(aroha, "700.00", status=Invoice.Status.DRAFT, date=datetime.date(2026, 6, 1))
    # when the pull refreshes the contacts its page touched
    assert contact_invoice_totals_refresh([aroha.pk, mere.pk, None]) == 1  # Mere's 0, 0, none already right
    # then drafts, voided and deleted invoices do not count
    assert figures(aroha) == (D("350.50"), 2, datetime.date(2026, 4, 1))
    assert figures(mere) == (D("0.00"), 0, None)
    # when Xero moves an invoice to another contact, both contacts' figures follow
    moved.contact = mere
    moved.save()
    contact_invoice_totals_refresh({aroha.pk, mere.pk})
    assert figures(aroha) == (D("250.50"), 1, datetime.date(2026, 4, 1))
    assert figures(mere) == (D("100.00"), 1, datetime.date(2026, 3, 1))
    # and a contact whose last counted invoice is voided is back to nothing
    Invoice.objects.filter(pk=moved.pk).update(status=Invoice.Status.VOIDED)
    contact_invoice_totals_refresh([mere.pk])
    assert figures(mere) == (D("0.00"), 0, None)


def test_refreshing_every_contact_gives_the_same_figures_as_refreshing_them_one_by_one():
    people = [services.contact_create(first_name=f"Person {n}", last_name="Smith") for n in range(3)]
    for n, person in enumerate(people):
        for day in range(n):
            invoice(person, "10.00", date=datetime.date(2026, 1, 1 + day))
    Contact.objects.update(invoiced_total=D("999"), invoice_count=99, last_invoice_date=None)
    contact_invoice_totals_refresh_all()
    assert [figures(person) for person in people] == [
        (D("0.00"), 0, None), (D("10.00"), 1, datetime.date(2026, 1, 1)), (D("20.00"), 2, datetime.date(2026, 1, 2))]
