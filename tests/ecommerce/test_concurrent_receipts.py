"""Two staff recording receipts on one sale at the same moment cannot overpay it between them.

The admin's receipt form records through services.receipt_record, which locks the sale's row before it
reads what is still due: the second save waits for the first to commit, then sees its receipt.
"""

import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from ecommerce import selectors, services
from ecommerce.models import Receipt, Sale
from tests.ecommerce.factories import a_payment_method, a_sale


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def slow_amount_due(monkeypatch):
    """Each save pauses after reading what is due, so two saves that are not serialised by the sale's lock
    both read it before either stores its receipt (without this the race is there but seldom lost)."""
    read_due = services.sale_amount_due

    def read_then_pause(*args, **kwargs):
        due = read_due(*args, **kwargs)
        time.sleep(0.4)
        return due

    monkeypatch.setattr(services, "sale_amount_due", read_then_pause)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_staff_recording_receipts_at_once_through_the_admin_cannot_overpay(django_user_model, slow_amount_due):
    # given a confirmed sale with 79.90 due, and two staff members each with the receipt form open
    sale = a_sale()  # 2 x 39.95 tax inclusive
    card = a_payment_method()
    staff = []
    for name in ("aroha", "mere"):
        client = Client()
        client.force_login(django_user_model.objects.create_superuser(name, f"{name}@example.com", "pw"))
        staff.append(client)
    start = threading.Barrier(len(staff))

    def record_50(client: Client, reference: str) -> int:
        try:
            start.wait()
            return client.post(reverse("admin:ecommerce_receipt_add"), {
                "sale": sale.pk, "payment_method": card.pk, "amount": "50.00",
                "date": datetime.date.today().isoformat(), "reference": reference,
            }).status_code
        finally:
            connection.close()  # each thread has its own connection; leave none open for teardown

    # when both record 50.00 at the same moment (100.00 against 79.90 due, neither ticks overpayment)
    with ThreadPoolExecutor(len(staff)) as pool:
        statuses = list(pool.map(record_50, staff, ["ch_aroha", "ch_mere"]))

    # then one receipt is stored and the other form comes back refused: the sale is not overpaid
    assert selectors.sale_amount_paid(Sale.objects.get(pk=sale.pk)) <= D("79.90"), (
        "two receipts recorded at once paid more than was due")
    assert sorted(statuses) == [200, 302]
    assert Receipt.objects.count() == 1
