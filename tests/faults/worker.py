"""`celery -A config worker`, with the broker's keys under a prefix the fault suite chose.

The machine's Redis is shared (other programs, other test runs): the suite's messages, unacked hash and
bindings all live under FAULTS_BROKER_KEY_PREFIX (kombu's `global_keyprefix`), so a worker of the suite
never takes anyone else's message, and the suite deletes exactly its own keys afterwards. Everything else is
the site's Celery app as the deployment runs it (config/celery.py, config/settings.py).

    python -m tests.faults.worker --loglevel WARNING --concurrency 1 ...   (the arguments of `celery worker`)
"""

import os
import sys


def main() -> None:
    from config.celery import app

    prefix = os.environ.get("FAULTS_BROKER_KEY_PREFIX", "")
    if prefix:
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": prefix}
    app.worker_main(["worker", *sys.argv[1:]])


if __name__ == "__main__":
    main()
