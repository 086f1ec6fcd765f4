"""The worker side of bench/pull.py: one full pull, in a process of its own so that its peak memory is
measured alone (the parent holds the emulator and its invoices). Configured by the environment."""

import json
import os
import time

from push_worker import peak_rss_mb

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from xero_sync.services.sync import sync_run

    started = time.perf_counter()
    run = sync_run(trigger="command", force=True, push=False)
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(),
                      "status": run.status if run else None, "errors": (run.errors if run else [])[:5]}))
