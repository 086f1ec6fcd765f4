"""`manage.py seed_demo`: the demo shop it builds, and that running it again adds nothing."""

import io
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum

from ecommerce import selectors
from ecommerce.models import (
    Contact,
    LineAmountType,
    NumberSequence,
    PaymentMethod,
    Receipt,
    Sale,
    SaleLine,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs a quarter second per login user; these tests are not about its strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded():
    call_command("seed_demo", stdout=io.StringIO())


def _row_counts() -> dict[str, int]:
    models = [*apps.get_app_config("ecommerce").get_models(), get_user_model()]
    return {model._meta.label: model._default_manager.count() for model in models}


def test_seed_creates_a_few_dozen_contacts(seeded):
    # when the demo shop is seeded (fixture)
    # then there are enough contacts to page through in the admin, each with a name and an email
    assert Contact.objects.count() >= 30
    assert not Contact.objects.filter(email="").exists()


def test_seed_creates_two_different_people_named_david_smith(seeded):
    # then two separate contacts share the name but not the email: the sync must never merge them
    davids = Contact.objects.filter(first_name="David", last_name="Smith", company_name="")
    assert davids.count() == 2
    assert len(set(davids.values_list("email", flat=True))) == 2


def test_seed_sales_use_both_tax_inclusive_and_tax_exclusive_prices(seeded):
    # then both kinds of pricing appear among the sales
    kinds = set(Sale.objects.values_list("line_amount_type", flat=True))
    assert {LineAmountType.INCLUSIVE, LineAmountType.EXCLUSIVE} <= kinds


def test_seed_sales_have_shipping_and_discounted_lines(seeded):
    # then some sales charge shipping and some lines are discounted
    assert SaleLine.objects.filter(kind=SaleLine.Kind.SHIPPING).exists()
    assert SaleLine.objects.filter(kind=SaleLine.Kind.SHIPPING, description__icontains="courier").exists()
    assert SaleLine.objects.filter(discount_rate__gt=0).exists()


def test_seed_has_unit_prices_with_four_decimal_places(seeded):
    # then some unit prices use the third and fourth decimal place (e.g. 18.3333), which Xero accepts
    prices = SaleLine.objects.values_list("unit_amount", flat=True)
    four_places = [price for price in prices if price != price.quantize(D("0.01"))]
    assert four_places, "no unit price with more than two decimal places"


def test_seed_creates_the_payment_methods_including_direct_deposit(seeded):
    # then staff can choose card, cash and direct deposit
    names = set(PaymentMethod.objects.values_list("name", flat=True))
    assert {"Card", "Cash", "Direct deposit"} <= names
    assert PaymentMethod.objects.get(name="Direct deposit").active


def test_seed_takes_card_receipts_on_confirmed_sales(seeded):
    # then card payments have been taken, and only on confirmed sales
    card = Receipt.objects.filter(payment_method__code="card")
    assert card.exists(), "the demo shop has no card receipts"
    assert not Receipt.objects.exclude(sale__status=Sale.Status.CONFIRMED).exists()


def test_seed_leaves_some_sales_draft_and_some_unpaid(seeded):
    # then the demo shows abandoned carts (drafts) and confirmed sales still waiting for payment
    assert Sale.objects.filter(status=Sale.Status.DRAFT).exists()
    confirmed = Sale.objects.filter(status=Sale.Status.CONFIRMED).prefetch_related(*selectors.SALE_PREFETCH)
    states = {selectors.sale_payment_state(sale) for sale in confirmed}
    assert selectors.PaymentState.UNPAID in states


def test_every_paid_demo_sale_received_exactly_its_total(seeded):
    # given the confirmed sales that have receipts
    paid = (
        Sale.objects.filter(status=Sale.Status.CONFIRMED, receipts__isnull=False)
        .distinct()
        .prefetch_related(*selectors.SALE_PREFETCH)
    )
    assert paid.exists(), "no confirmed sale has been paid"
    for sale in paid:
        # then what was received equals the sale's total to the cent: none is part paid or overpaid
        received = sale.receipts.aggregate(total=Sum("amount"))["total"]
        assert received == selectors.sale_totals(sale).total, sale.number
        assert selectors.sale_amount_due(sale) == D("0.00"), sale.number
        assert selectors.sale_payment_state(sale) == selectors.PaymentState.PAID, sale.number


def test_seed_creates_a_superuser_who_can_log_in(seeded, client):
    # when the demo login is used
    logged_in = client.login(username=settings.DEMO_ADMIN_USERNAME, password=settings.DEMO_ADMIN_PASSWORD)
    # then it works and opens the admin
    assert logged_in
    user = get_user_model().objects.get(username=settings.DEMO_ADMIN_USERNAME)
    assert user.is_superuser and user.is_staff
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "Sales" in response.content.decode()


def test_running_the_seed_twice_creates_nothing_new(seeded):
    # given the demo shop seeded once
    before = _row_counts()
    numbers_before = dict(NumberSequence.objects.values_list("name", "last_value"))
    sales_before = set(Sale.objects.values_list("number", "reference", "status"))
    # when it is seeded again
    call_command("seed_demo", stdout=io.StringIO())
    # then no model gained a row, no sale number was used up and the sales are unchanged
    assert _row_counts() == before
    assert dict(NumberSequence.objects.values_list("name", "last_value")) == numbers_before
    assert set(Sale.objects.values_list("number", "reference", "status")) == sales_before
    assert before["ecommerce.Contact"] >= 30 and before["ecommerce.Sale"] > 0


def test_the_seed_summary_names_the_staff_login(capsys):
    # when the seed runs for the first time
    call_command("seed_demo")
    # then it tells the user how to log in
    out = capsys.readouterr().out
    assert f"Staff login: {settings.DEMO_ADMIN_USERNAME} / {settings.DEMO_ADMIN_PASSWORD}" in out
    assert f"{Contact.objects.count()} contacts" in out
