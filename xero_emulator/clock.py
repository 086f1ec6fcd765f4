"""The emulator's notion of "now": real time plus an offset that tests can move forward.

Everything time-dependent (token expiry, rate-limit windows, idempotency retention, UpdatedDateUTC)
reads this clock, so a test can jump 31 minutes ahead instead of sleeping.
"""

import threading
import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Seconds since the epoch, as the emulator sees them."""
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        """An aware UTC datetime, truncated to milliseconds as Xero stores UpdatedDateUTC."""
        moment = datetime.fromtimestamp(self.time(), UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
