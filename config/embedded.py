"""Runs the whole site on its embedded defaults: `python -m config.embedded` (what `make run` calls).

Starts the web server, a Celery worker and beat (on the filesystem broker unless REDIS_URL is set) and,
when the Xero emulator package is present and no real Xero app is configured, the emulator as the
Xero organisation. DEBUG is on in them unless DEBUG says otherwise (everywhere else it defaults to off).
Once the site answers, prints the admin's address and the login together, last. Stops them all when one
exits, on Ctrl-C, on SIGTERM, and when the `make` it runs under is told to stop, so nothing is left running.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WEB_ADDRESS = os.environ.get("WEB_ADDRESS", "127.0.0.1:8000")
XERO_EMULATOR_PORT = os.environ.get("XERO_EMULATOR_PORT", "8765")
STARTUP_SECONDS = 120  # a first run migrates and seeds before this; the processes start within seconds
STOP_SECONDS = 10  # each process's own shutdown; after that it is killed
WORKER_CONCURRENCY = 2
# The signals `make` blocks while its handler waits for the recipe (a shell's signal mask, as /proc shows it)
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def processes() -> dict[str, list[str]]:
    celery = [PYTHON, "-m", "celery", "-A", "config"]
    wanted = {
        "web": [PYTHON, "manage.py", "runserver", WEB_ADDRESS, "--noreload"],
        # Celery's own banner and "ready" lines are one screen at start; the routine ticks are DEBUG
        # (config/logs.py RoutineTicksFilter), so the console stays quiet between real events.
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(WORKER_CONCURRENCY)],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }
    if (BASE_DIR / "xero_emulator" / "__main__.py").exists() and emulator_wanted():
        state = str(BASE_DIR / "var" / "xero-emulator.json")
        wanted["xero-emulator"] = [PYTHON, "-m", "xero_emulator", "--port", XERO_EMULATOR_PORT, "--state", state,
                                   "--time-zone", os.environ.get("SHOP_TIME_ZONE", "Pacific/Auckland")]
    return wanted


def emulator_wanted() -> bool:
    """The site talks to the emulator (settings.XERO_USING_EMULATOR) unless a real app is configured."""
    return bool(os.environ.get("XERO_EMULATOR_URL")) or not os.environ.get("XERO_CLIENT_ID")


def child_environment() -> dict[str, str]:
    """The environment of the processes started here: the caller's, with DEBUG on unless it says otherwise.
    This local run is the one place debug pages are wanted; every other start defaults to DEBUG off."""
    return {**os.environ, "DEBUG": os.environ.get("DEBUG", "true")}


def login_words() -> str:
    """`admin / admin`, as seed_demo made it; only the user name if its password was changed since."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    username, password = settings.DEMO_ADMIN_USERNAME, settings.DEMO_ADMIN_PASSWORD
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return "none yet: run `python manage.py seed_demo` or `createsuperuser`"
    if user.check_password(password):
        return f"{username} / {password}"
    return f"{username} (with the password you set)"


def site_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://{WEB_ADDRESS}/admin/login/", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def worker_started(running: dict[str, subprocess.Popen]) -> bool:
    """The worker has forked its pool, which it does just before it says it is ready (no /proc: assume so)."""
    tasks = Path(f"/proc/{running['worker'].pid}/task")
    if not tasks.exists():
        return True
    children = set()
    for task in tasks.glob("*"):
        try:
            children |= set((task / "children").read_text().split())
        except OSError:
            continue
    return len(children) >= WORKER_CONCURRENCY


def parent_is_stopping(parent_pid: int) -> bool:
    """The `make` we run under was told to stop. GNU make passes SIGTERM on to its recipe, but on SIGINT
    it only waits for the recipe, expecting a terminal to have signalled the whole process group; an IDE
    or a script that signals make alone would leave every process running. While its handler waits, make
    keeps that signal blocked, which /proc shows; and once make is gone we have a new parent."""
    if os.getppid() != parent_pid:
        return True
    try:
        proc = Path(f"/proc/{parent_pid}")
        if proc.joinpath("comm").read_text().strip() != "make":
            return False
        status = dict(line.split(":\t", 1) for line in proc.joinpath("status").read_text().splitlines()
                      if ":\t" in line)
        blocked = int(status["SigBlk"], 16)
    except (OSError, KeyError, ValueError):  # no /proc (not Linux): Ctrl-C and SIGTERM still stop us
        return False
    return any(blocked & (1 << (number - 1)) for number in STOPPING_SIGNALS)


def stop_all(running: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each process (a worker stops its own pool), then SIGKILL to each process's group: what
    did not stop in time, and any child a process left behind."""
    for process in running.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in running.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
    for process in running.values():
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(process.pid, number)  # each child leads a process group of its own
    except (ProcessLookupError, PermissionError):
        pass


def main() -> int:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    parent_pid = os.getppid()
    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, request_stop)
    environment = child_environment()
    # Each in a process group of its own: a terminal's Ctrl-C reaches only this runner, which stops them
    # once and in order, instead of every process being interrupted on its own (Celery's second signal
    # is a cold shutdown).
    running = {name: subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdin=subprocess.DEVNULL,
                                      process_group=0)
               for name, command in processes().items()}
    exit_code, announced, started = 0, False, time.monotonic()
    while not stop:
        for name, process in running.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest.", file=sys.stderr, flush=True)
                exit_code, stop = process.returncode or 1, True
                break
        if parent_is_stopping(parent_pid):
            stop = True
        up = site_answers() and worker_started(running)
        if not stop and not announced and (up or time.monotonic() - started > STARTUP_SECONDS):
            announced = True
            time.sleep(1)  # let the worker's "ready" and beat's start-up lines come out first
            print(f"\n  Shop admin: http://{WEB_ADDRESS}/admin/   login: {login_words()}\n"
                  f"  Running {', '.join(running)}; Ctrl-C stops them all.\n", flush=True)
        time.sleep(0.25 if not announced else 0.5)
    stop_all(running)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
