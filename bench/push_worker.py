"""The worker side of bench/backfill.py: push everything pending, in a process of its own so that its
peak memory is measured alone. Configured entirely by the environment the parent sets."""

import json
import os
import resource
import sys
import time

from common import push_everything


def peak_rss_mb() -> float:
    """This process's own peak resident memory. On Linux, VmHWM: getrusage's ru_maxrss would not do,
    because execve carries the spawning process's peak into it (the parent holds the emulator and its
    20,000 orders, so the child would report the parent's size)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    started = time.perf_counter()
    runs = push_everything()
    print(json.dumps({"runs": runs, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}))
