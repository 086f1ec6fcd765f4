"""The worker side of bench/backfill.py: push everything pending, in a process of its own so that its
peak memory is measured alone. Configured entirely by the environment the parent sets."""

import json
import os
import resource
import time

from common import push_everything

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    started = time.perf_counter()
    runs = push_everything()
    print(json.dumps({"runs": runs, "seconds": time.perf_counter() - started,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
