"""Runs the whole site on its embedded defaults: `python -m config.embedded` (what `make run` calls).

Starts the web server, a Celery worker and beat (on the filesystem broker unless REDIS_URL is set) and,
when the Xero emulator package is present and no real Xero app is configured, the emulator as the
Xero organisation. DEBUG is on in them unless DEBUG says otherwise (everywhere else it defaults to off).
Stops them all when one exits or on Ctrl-C, so nothing is left running behind you.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WEB_ADDRESS = os.environ.get("WEB_ADDRESS", "127.0.0.1:8000")


def processes() -> dict[str, list[str]]:
    celery = [PYTHON, "-m", "celery", "-A", "config"]
    wanted = {
        "web": [PYTHON, "manage.py", "runserver", WEB_ADDRESS, "--noreload"],
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }
    if (BASE_DIR / "xero_emulator" / "__main__.py").exists():
        port = os.environ.get("XERO_EMULATOR_PORT", "8765")
        state = str(BASE_DIR / "var" / "xero-emulator.json")
        wanted["xero-emulator"] = [PYTHON, "-m", "xero_emulator", "--port", port, "--state", state]
    return wanted


def child_environment() -> dict[str, str]:
    """The environment of the processes started here: the caller's, with DEBUG on unless it says otherwise.
    This local run is the one place debug pages are wanted; every other start defaults to DEBUG off."""
    return {**os.environ, "DEBUG": os.environ.get("DEBUG", "true")}


def main() -> int:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    environment = child_environment()
    running = {name: subprocess.Popen(command, cwd=BASE_DIR, env=environment)
               for name, command in processes().items()}
    print(f"\n  Shop admin: http://{WEB_ADDRESS}/admin/  (processes: {', '.join(running)}; Ctrl-C stops all)\n",
          flush=True)
    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    exit_code = 0
    while not stop:
        for name, process in running.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest.", file=sys.stderr)
                exit_code, stop = process.returncode or 1, True
                break
        time.sleep(0.5)
    for process in running.values():
        if process.poll() is None:
            process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
