"""The admin's date drill-down reads the years, months and days from the date index (ecommerce.querysets):
the same dates as Django's own SELECT DISTINCT, filtered as the list is."""

import datetime

import pytest
from django.db.models import QuerySet

from ecommerce.models import Sale
from tests.admin_volume import grow_to

pytestmark = pytest.mark.django_db


def django_dates(queryset, kind: str, order: str = "ASC") -> list[datetime.date]:
    return list(QuerySet.dates(queryset, "date", kind, order))


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_the_drill_down_offers_the_dates_the_sales_have(kind):
    # given sales over two years, cancelled ones and drafts among them
    grow_to(60)
    Sale.objects.filter(pk__in=Sale.objects.order_by("pk").values("pk")[:20]).update(date=datetime.date(2025, 3, 9))
    Sale.objects.filter(pk__in=Sale.objects.order_by("-pk").values("pk")[:5]).update(date=datetime.date(2026, 11, 30))
    every, drafts = Sale.objects.all(), Sale.objects.filter(status=Sale.Status.DRAFT)
    one_month = Sale.objects.filter(date__year=2026, date__month=11)
    # then each level offers exactly the dates Django's own query finds, for the whole list and filtered
    for listed in (every, drafts, one_month, Sale.objects.filter(pk__in=list(every.values_list("pk", flat=True)[:7]))):
        assert list(listed.dates("date", kind)) == django_dates(listed, kind)
        assert list(listed.dates("date", kind, "DESC")) == django_dates(listed, kind, "DESC")
    assert datetime.date(2025, 1, 1) in every.dates("date", "year")


def test_a_list_with_nothing_in_it_offers_no_dates():
    grow_to(10)
    assert list(Sale.objects.filter(pk__in=[]).dates("date", "year")) == []
    assert list(Sale.objects.filter(number="none such").dates("date", "month")) == []
