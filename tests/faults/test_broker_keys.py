"""The fault suite on a Redis other programs share: it uses the database REDIS_URL names and touches no key
but its own."""

import pytest
import redis
from django.conf import settings

from .conftest import broker_keys, broker_keys_delete, place_orders, run_once_through_a_worker

NEIGHBOUR_QUEUE_MESSAGE = b'{"body": "a task of another program on this Redis"}'


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_the_suite_uses_redis_urls_database_and_deletes_only_the_keys_it_created(
        xero_connected, xero_site, workers, broker, broker_key_prefix):
    """Invariant: the suite's broker is the database REDIS_URL names (not one of its own choosing); another
    program's keys there, even a Celery queue under Celery's default name, are neither consumed nor deleted;
    and after the test none of the suite's own keys are left."""
    shared = redis.Redis.from_url(settings.REDIS_URL)
    neighbour = {"queue": "celery", "setting": "xero-shop-faults-neighbour:setting"}
    assert not shared.exists(*neighbour.values()), "these keys belong to someone: the test will not touch them"
    try:
        # given another program's Celery queue and a setting of its own in the same Redis database
        shared.rpush(neighbour["queue"], NEIGHBOUR_QUEUE_MESSAGE)
        shared.set(neighbour["setting"], "theirs")
        # and one order, and one of the suite's workers
        place_orders(1)
        [worker] = workers.start()

        # when the suite runs a sync through its worker
        run_once_through_a_worker(broker)

        # then the broker was the database REDIS_URL names, and the sync went through it
        assert broker.url == settings.REDIS_URL == worker.env["REDIS_URL"]
        assert broker_keys(settings.REDIS_URL, broker_key_prefix), "the suite's keys should be in REDIS_URL's db"
        assert len(xero_site.invoices()) == 1
        # when the suite cleans up after itself
        workers.stop_all()
        deleted = broker_keys_delete(settings.REDIS_URL, broker_key_prefix)

        # then its own keys are gone, and the other program's queue and setting are as it left them
        assert deleted > 0
        assert broker_keys(settings.REDIS_URL, broker_key_prefix) == []
        assert shared.lrange(neighbour["queue"], 0, -1) == [NEIGHBOUR_QUEUE_MESSAGE]
        assert shared.get(neighbour["setting"]) == b"theirs"
    finally:
        shared.delete(*neighbour.values())


def test_deleting_the_suites_keys_without_a_prefix_is_refused():
    # (an empty prefix would match every key of a shared database)
    with pytest.raises(ValueError):
        broker_keys_delete(settings.REDIS_URL or "redis://127.0.0.1:6379/0", "")
