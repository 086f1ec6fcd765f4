"""Recording a refund from the sale's page in the admin: the same service as everywhere, a refusal shown on
the form with nothing stored, and the permission it needs."""

from decimal import Decimal as D

import pytest

from ecommerce import selectors, services
from ecommerce.models import Refund, Sale
from tests.ecommerce.factories import a_payment_method, a_sale

pytestmark = pytest.mark.django_db


def paid_sale() -> Sale:
    sale = a_sale(lines=[{"description": "Cap", "quantity": D("3"), "unit_amount": D("33.33"), "tax_rate": D("15"),
                          "tax_code": "GST"}])
    services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=D("99.99"))
    return sale


def refund_page(sale: Sale) -> str:
    return f"/admin/ecommerce/sale/{sale.pk}/refund/"


def test_the_sale_page_offers_record_a_refund_and_the_form_refunds_a_line(admin_client):
    sale = paid_sale()
    assert f'href="{refund_page(sale)}"' in admin_client.get(f"/admin/ecommerce/sale/{sale.pk}/change/").content.decode()
    [cap] = sale.lines.all()
    answer = admin_client.post(refund_page(sale), {
        "payment_method": a_payment_method().pk, "what": "lines", f"line_{cap.pk}": "1", "reason": "Too small"},
        follow=True)
    assert answer.redirect_chain[-1][0] == f"/admin/ecommerce/sale/{sale.pk}/change/"
    assert "Refund recorded: CN-000001, 33.33 credited, 33.33 back by Card." in answer.content.decode()
    refund = Refund.objects.get()
    assert (refund.credit_total, refund.reason) == (D("33.33"), "Too small")


def test_a_refund_over_what_was_received_is_refused_on_the_form_and_nothing_is_stored(admin_client):
    sale = paid_sale()
    answer = admin_client.post(refund_page(sale), {"payment_method": a_payment_method().pk, "what": "amount",
                                                   "amount": "120.00"})
    assert answer.status_code == 200
    assert "120.00 is more than the 99.99 received" in answer.content.decode()
    assert not Refund.objects.exists()


def test_cancel_and_refund_from_the_form(admin_client):
    sale = a_sale(lines=[{"description": "Cap", "quantity": D("3"), "unit_amount": D("33.33"), "tax_rate": D("15"),
                          "tax_code": "GST"}])
    services.receipt_record(sale=sale, payment_method=a_payment_method(), amount=D("40.00"))
    answer = admin_client.post(refund_page(sale), {"payment_method": a_payment_method().pk, "what": "everything",
                                                   "cancel": "on"}, follow=True)
    assert f"{sale.number} cancelled: CN-000001, 99.99 credited, 40.00 back by Card." in answer.content.decode()
    sale = Sale.objects.prefetch_related(*selectors.SALE_PREFETCH).get(pk=sale.pk)
    assert sale.status == Sale.Status.CANCELLED and selectors.sale_amount_due(sale) == 0


def test_cancelling_a_paid_sale_from_the_list_says_to_refund_first(admin_client):
    sale = paid_sale()
    answer = admin_client.post("/admin/ecommerce/sale/", {"action": "cancel_sales", "_selected_action": [sale.pk]},
                               follow=True)
    assert "Refund it first, or choose &#x27;Cancel and refund&#x27;" in answer.content.decode()
    assert Sale.objects.get(pk=sale.pk).status == Sale.Status.CONFIRMED


def test_recording_a_refund_needs_the_add_refund_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    sale = paid_sale()
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_sale"), Permission.objects.get(codename="change_sale"))
    client.force_login(clerk)
    assert client.get(refund_page(sale)).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="add_refund"))
    assert client.get(refund_page(sale)).status_code == 200
