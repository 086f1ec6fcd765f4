"""`make run` as a newcomer runs it (issue 18 item 10): in a copy of the tree with its own var/ (SQLite,
the filesystem broker) and free ports, the real Makefile migrates, seeds and starts web, worker, beat and
the emulator; the admin's address and the login are printed together once the site answers; no kombu
warning, no favicon 404; and SIGTERM or SIGINT to the `make` process alone, as an IDE or a script sends
it, stops every process it started."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support import REPO_ROOT, need

VENV = REPO_ROOT / ".venv"
STARTUP_SECONDS = 240  # a first run migrates a fresh SQLite database and seeds the demo shop
STOP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    need(shutil.which("make") is not None, "needs make")
    need((VENV / "bin" / "python").exists(), "needs the project's .venv (make install)")
    copy = tmp_path_factory.mktemp("make-run") / "shop"
    shutil.copytree(REPO_ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", "var", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules", ".env"))
    return copy


def descendants(pid: int) -> set[int]:
    found, waiting = set(), [pid]
    while waiting:
        parent = waiting.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except OSError:
                continue
            waiting += children - found
            found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(check, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"gave up waiting for {what}")


class MakeRun:
    def __init__(self, tree: Path, log: Path):
        self.web = f"127.0.0.1:{free_port()}"
        self.log = log
        environment = {key: value for key, value in os.environ.items()
                       if key not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL", "LOG_FORMAT"}
                       and not key.startswith(("XERO_", "CELERY", "DJANGO_"))}
        environment.update(WEB_ADDRESS=self.web, XERO_EMULATOR_PORT=str(free_port()))
        # VENV: the project's installed venv; -o: never reinstall into it from this copy.
        self.make = subprocess.Popen(
            ["make", "run", f"VENV={VENV}", "-o", f"{VENV}/bin/.installed"], cwd=tree, env=environment,
            stdin=subprocess.DEVNULL, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def answers(self) -> bool:
        assert self.make.poll() is None, f"make run exited early:\n{self.output()[-3000:]}"
        try:
            return requests.get(f"http://{self.web}/admin/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop_everything_left(self) -> None:
        """Cleanup whatever the test's verdict: the processes it started, by their ids."""
        for pid in descendants(self.make.pid) | {self.make.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.make.wait(timeout=STOP_SECONDS)


@pytest.fixture
def make_run(tree, tmp_path):
    started = MakeRun(tree, tmp_path / "make-run.log")
    yield started
    started.stop_everything_left()


def started_site(make_run: MakeRun) -> set[int]:
    wait_for(make_run.answers, seconds=STARTUP_SECONDS, what="the admin to answer")
    wait_for(lambda: "Shop admin:" in make_run.output(), seconds=30, what="the admin's address to be printed")
    processes = descendants(make_run.make.pid)
    # runner, web, worker (and its pool), beat, emulator
    assert len(processes) >= 5, processes
    return processes


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_make_alone_stops_every_process_it_started(make_run, stop_signal):
    processes = started_site(make_run)

    os.kill(make_run.make.pid, stop_signal)  # make alone, not its process group

    make_run.make.wait(timeout=STOP_SECONDS)
    wait_for(lambda: not any(alive(pid) for pid in processes), seconds=STOP_SECONDS, what="every process to stop")


def test_make_run_prints_the_address_and_the_login_together_last_and_stays_calm(make_run):
    started_site(make_run)
    assert requests.get(f"http://{make_run.web}/favicon.ico", timeout=5).status_code == 200
    assert 'rel="icon"' in requests.get(f"http://{make_run.web}/admin/login/", timeout=5).text

    output = make_run.output()
    banner = f"Shop admin: http://{make_run.web}/admin/   login: admin / admin"
    assert banner in output
    assert output.index("Starting development server") < output.index(banner)
    assert output.index(" ready.") < output.index(banner)  # the worker's, printed before the address
    assert "Staff login: admin /" not in output  # the password is printed once, with the address
    assert "No hostname was supplied" not in output  # kombu's warning about the filesystem broker's URL
    assert "Not Found: /favicon.ico" not in output
    assert "NZDT" in output or "NZST" in output  # log times in the shop's zone, named
