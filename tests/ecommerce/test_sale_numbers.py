"""Sale numbers stay unique and gapless when many checkouts happen at the same moment."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from ecommerce.models import Sale
from tests.ecommerce.factories import a_contact, a_sale


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sales_get_distinct_consecutive_numbers():
    # given one contact and eight checkouts that start together
    contact = a_contact()
    workers, sales_each = 8, 5
    start = threading.Barrier(workers)

    def checkout_burst() -> list[str]:
        try:
            start.wait()
            return [a_sale(contact=contact).number for _ in range(sales_each)]
        finally:
            connection.close()  # each thread has its own connection; leave none open for teardown

    # when they all create sales at once, each in its own transaction and connection
    with ThreadPoolExecutor(workers) as pool:
        numbers = [number for burst in pool.map(lambda _: checkout_burst(), range(workers)) for number in burst]

    # then every sale got its own number, with no gaps
    expected = [f"S-{value:06d}" for value in range(1, workers * sales_each + 1)]
    assert sorted(numbers) == expected
    assert sorted(Sale.objects.values_list("number", flat=True)) == expected
