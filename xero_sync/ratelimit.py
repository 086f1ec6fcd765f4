"""Pacing under Xero's limits, from what Xero says rather than guesses.

Every call first waits, if needed, so that this organisation's conversation stays under the minute limit
(counting our own calls in a rolling window, and believing X-MinLimit-Remaining when Xero says fewer
are left). A 429 for the minute waits Retry-After and tries the same request again; a 429 for the day
pauses the organisation until Xero's Retry-After, stored on the connection so every worker respects it.
"""

import collections
import dataclasses
import datetime
import logging
import random
import time
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from .client import AccountingGateway
from .errors import XeroRateLimited
from .models import XeroConnection

logger = logging.getLogger(__name__)

# Waits longer than this end the run instead of holding a worker; the organisation is paused meanwhile.
LONGEST_INLINE_WAIT_SECONDS = 120
RATE_LIMIT_RETRIES = 5


class SyncPaused(Exception):
    """Xero's daily limit is reached (or a minute wait is too long to sit out): try again later."""

    def __init__(self, until: datetime.datetime, reason: str):
        self.until = until
        super().__init__(reason)


def next_utc_midnight(now: datetime.datetime) -> datetime.datetime:
    return (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


class PacedGateway:
    """An AccountingGateway whose calls wait their turn and sit out minute-limit 429s."""

    def __init__(self, gateway: AccountingGateway, connection: XeroConnection, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.gateway = gateway
        self.connection = connection
        self.window = settings.XERO_RATE_WINDOW_SECONDS
        self.per_window = settings.XERO_RATE_PER_WINDOW
        self._sleep, self._clock = sleep, clock
        self._recent: collections.deque[float] = collections.deque()
        self.calls = 0
        self.rate_limited = 0

    def call(self, operation: str, **kwargs) -> dict:
        for _ in range(RATE_LIMIT_RETRIES):
            self._wait_for_a_slot()
            self._recent.append(self._clock())
            self.calls += 1
            try:
                return self.gateway.call(operation, **kwargs)
            except XeroRateLimited as limited:
                self.rate_limited += 1
                self._sit_out(limited)
        raise SyncPaused(timezone.now() + datetime.timedelta(seconds=self.window),
                         "Xero kept answering 429; trying again later.")

    def _wait_for_a_slot(self) -> None:
        now = self._clock()
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        # Keep one call in hand for the rest of the world (a bookkeeper's other apps share the limit).
        allowed = self.per_window - 1
        told = self.gateway.limits.minute_remaining
        if len(self._recent) >= allowed or (told is not None and told <= 1 and self._recent):
            wait = self._recent[0] + self.window - now
            if wait > 0:
                logger.info("xero pacing: waiting %.2f s for a minute-limit slot", wait)
                self._sleep(wait)

    def _sit_out(self, limited: XeroRateLimited) -> None:
        now = timezone.now()
        if limited.problem == "day":
            until = now + datetime.timedelta(seconds=limited.retry_after) if limited.retry_after else next_utc_midnight(now)
            raise SyncPaused(until, "Xero's daily call limit for this organisation is reached.")
        if limited.problem in ("minute",) and limited.retry_after is not None:
            wait = float(limited.retry_after)
        else:
            # concurrent / appminute: Xero gives no Retry-After; back off briefly with jitter.
            wait = random.uniform(1, 3)
        if wait > LONGEST_INLINE_WAIT_SECONDS:
            raise SyncPaused(now + datetime.timedelta(seconds=wait), f"Xero asked to wait {wait:.0f} s.")
        logger.warning("xero 429 (%s): waiting %.1f s before the same request again", limited.problem, wait)
        self._sleep(wait)
        # The 429 said "0 left"; after Retry-After that is stale, and believing it would wait a whole window.
        self.gateway.limits = dataclasses.replace(self.gateway.limits, minute_remaining=None)
