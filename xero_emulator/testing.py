"""Start an emulator for a test (or a benchmark) and stop it cleanly afterwards."""

import contextlib
import threading
from collections.abc import Iterator

from .emulator import Emulator
from .server import make_server


@contextlib.contextmanager
def running_emulator(**options) -> Iterator[Emulator]:
    """A live emulator on 127.0.0.1 at a free port, served from a daemon thread.

    ``options`` are :class:`~xero_emulator.emulator.Emulator`'s keyword arguments (state_file,
    per_minute, window_seconds, per_day, concurrent, limits_enabled, idempotency_seconds, seed, ...).
    """
    emulator = Emulator(**options)
    server = make_server(emulator, "127.0.0.1", 0)
    # A short poll interval makes shutdown() quick: it waits for the serving loop to notice.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="xero-emulator", daemon=True
    )
    thread.start()
    try:
        yield emulator
    finally:
        emulator.stopping.set()  # release handlers parked in a "hang" fault
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
