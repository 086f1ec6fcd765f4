"""Xero's per-tenant rate limits and the Idempotency-Key replay cache.

Limits (docs/xero-api.md §1): per organisation 60 calls per minute, 5 in flight, 5,000 per day (1,000
on the Starter tier); per app 10,000 per minute. The windows here are rolling (Xero's are fixed windows
with unknown reset times, which a client cannot tell apart: it must follow Retry-After either way). A
refused call does not count. The minute window is configurable so benchmarks can run "60 per 2
seconds", and Retry-After scales with it.
"""

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace

from .clock import Clock

DAY_SECONDS = 86400
APP_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limits:
    per_minute: int = 60
    window_seconds: float = 60
    per_day: int = 5000
    concurrent: int = 5
    enabled: bool = True


@dataclass
class _Usage:
    minute: deque = field(default_factory=deque)  # call times within the minute window
    day: deque = field(default_factory=deque)  # call times within the last 24 hours
    in_flight: int = 0
    peak_in_flight: int = 0  # the most calls in flight at once since the last reset of the peak

    def start(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)


@dataclass
class Admission:
    admitted: bool
    headers: dict[str, str]  # X-*-Remaining (+ X-Rate-Limit-Problem, Retry-After when refused)
    problem: str | None = None


class RateLimiter:
    def __init__(self, clock: Clock, defaults: Limits, app_per_minute: int = 10000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._defaults = defaults
        self._limits: dict[str, Limits] = {}
        self._usage: dict[str, _Usage] = {}
        self._app_calls: deque = deque()
        self._app_per_minute = app_per_minute

    def configure(self, tenant_id: str | None, **changes) -> None:
        """Change one tenant's limits, or (tenant_id None) every tenant's and the default for new ones."""
        with self._lock:
            if tenant_id is None:
                self._defaults = replace(self._defaults, **changes)
                for key, limits in self._limits.items():
                    self._limits[key] = replace(limits, **changes)
            else:
                self._limits[tenant_id] = replace(self.limits(tenant_id), **changes)

    def limits(self, tenant_id: str) -> Limits:
        return self._limits.get(tenant_id, self._defaults)

    def admit(self, tenant_id: str) -> Admission:
        """Count a call that is starting, or refuse it with Xero's 429 headers."""
        with self._lock:
            now = self._clock.time()
            limits = self.limits(tenant_id)
            usage = self._usage.setdefault(tenant_id, _Usage())
            _expire(usage.minute, now - limits.window_seconds)
            _expire(usage.day, now - DAY_SECONDS)
            _expire(self._app_calls, now - APP_WINDOW_SECONDS)
            if not limits.enabled:
                # Benchmarks measure our CPU, not Xero's pacing: never refuse, always report full quota.
                usage.start()
                return Admission(True, self._headers(limits, minute_used=0, day_used=0, app_used=0))

            problem, wait = None, None
            if len(usage.day) >= limits.per_day:
                problem, wait = "day", usage.day[0] + DAY_SECONDS - now
            elif len(self._app_calls) >= self._app_per_minute:
                problem = "appminute"
            elif len(usage.minute) >= limits.per_minute:
                problem, wait = "minute", usage.minute[0] + limits.window_seconds - now
            elif usage.in_flight >= limits.concurrent:
                problem = "concurrent"
            if problem is None:
                usage.minute.append(now)
                usage.day.append(now)
                self._app_calls.append(now)
                usage.start()
            headers = self._headers(limits, len(usage.minute), len(usage.day), len(self._app_calls))
            if problem is None:
                return Admission(True, headers)
            headers["X-Rate-Limit-Problem"] = problem
            if wait is not None:
                # Whole seconds until a slot frees, never 0 (a client would retry at once).
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return Admission(False, headers, problem)

    def release(self, tenant_id: str) -> None:
        with self._lock:
            self._usage[tenant_id].in_flight -= 1

    def in_flight(self, tenant_id: str) -> int:
        with self._lock:
            usage = self._usage.get(tenant_id)
            return usage.in_flight if usage else 0

    def peak_in_flight(self, tenant_id: str) -> int:
        """The most of this tenant's calls served at the same moment since the peak was last reset: a
        test reads it at the end instead of sampling in_flight() and missing a short overlap."""
        with self._lock:
            usage = self._usage.get(tenant_id)
            return usage.peak_in_flight if usage else 0

    def reset_peak_in_flight(self, tenant_id: str | None = None) -> None:
        """Start the high-water mark again from the calls in flight now (tenant_id None: every tenant's)."""
        with self._lock:
            for tenant, usage in self._usage.items():
                if tenant_id is None or tenant == tenant_id:
                    usage.peak_in_flight = usage.in_flight

    def stats(self) -> dict[str, dict[str, int]]:
        """Per tenant: calls in flight now and the peak since it was last reset."""
        with self._lock:
            return {tenant: {"in_flight": usage.in_flight, "peak_in_flight": usage.peak_in_flight}
                    for tenant, usage in self._usage.items()}

    def reset(self) -> None:
        with self._lock:
            self._usage = {tenant: _Usage(in_flight=u.in_flight, peak_in_flight=u.in_flight)
                           for tenant, u in self._usage.items()}
            self._app_calls.clear()

    def _headers(self, limits: Limits, minute_used: int, day_used: int, app_used: int) -> dict[str, str]:
        return {
            "X-MinLimit-Remaining": str(max(0, limits.per_minute - minute_used)),
            "X-DayLimit-Remaining": str(max(0, limits.per_day - day_used)),
            "X-AppMinLimit-Remaining": str(max(0, self._app_per_minute - app_used)),
        }


def _expire(times: deque, cutoff: float) -> None:
    while times and times[0] <= cutoff:
        times.popleft()


@dataclass
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    json: object  # the parsed body, for the call log
    stored_at: float


class IdempotencyCache:
    """Responses to writes that carried an Idempotency-Key, replayed exactly for the retention period
    (6 minutes from the first call, docs §5). The key is scoped per tenant, method and path."""

    def __init__(self, clock: Clock, retention_seconds: float = 360) -> None:
        self._clock = clock
        self.retention_seconds = retention_seconds
        self._entries: dict[tuple, StoredResponse] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> StoredResponse | None:
        with self._lock:
            self._expire()
            return self._entries.get(key)

    def put(self, key: tuple, status: int, body: bytes, content_type: str, parsed: object) -> None:
        with self._lock:
            self._expire()
            self._entries[key] = StoredResponse(status, body, content_type, parsed, self._clock.time())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _expire(self) -> None:
        cutoff = self._clock.time() - self.retention_seconds
        # Entries are kept in the order they were stored, so the expired ones are at the front.
        for key in list(self._entries):
            if self._entries[key].stored_at > cutoff:
                break
            del self._entries[key]
