"""Injected failures: the next N matching calls (or a seeded random fraction) fail on purpose.

Kinds: "429" (minute or day limit, with Retry-After), "500", "503", "hang" (hold the connection past
the client's timeout, then close it without an answer) and "drop" (close at once without an answer).
With ``after_write`` the call is carried out first and only then fails: the write is stored but the
client cannot know, the "unknown outcome" a sync engine must survive.
"""

import random
import threading
from dataclasses import dataclass

KINDS = ("429", "500", "503", "hang", "drop")
PROBLEMS = ("minute", "day")


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: no limit (random faults)
    method: str | None = None
    path_contains: str | None = None
    after_write: bool = False
    probability: float | None = None
    seconds: float | None = None  # how long a "hang" lasts
    problem: str = "minute"  # which limit a "429" claims
    retry_after: int | None = None

    def matches(self, method: str, path: str, accounting: bool) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path_contains is None:
            # Without a path filter only Accounting API calls fail; a token refresh fails only when asked.
            return accounting
        return self.path_contains.lower() in path.lower()


class FaultPlan:
    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        kind: str,
        *,
        count: int | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        after_write: bool = False,
        probability: float | None = None,
        seconds: float | None = None,
        problem: str = "minute",
        retry_after: int | None = None,
    ) -> Fault:
        """``count`` defaults to 1, or to unlimited when ``probability`` is given."""
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {kind!r}")
        if problem not in PROBLEMS:
            raise ValueError(f"problem must be one of {PROBLEMS}, not {problem!r}")
        if probability is not None and not 0 <= probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        if count is None and probability is None:
            count = 1
        fault = Fault(
            kind, count, method, path_contains, after_write, probability, seconds, problem, retry_after
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, method: str, path: str, *, accounting: bool) -> Fault | None:
        """The fault this call suffers, if any (consuming one of its count)."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path, accounting):
                    continue
                if fault.probability is not None and self._random.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None
