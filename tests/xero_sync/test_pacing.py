"""Pacing under Xero's minute limit and sitting out its 429s (xero_sync/ratelimit.py), on a fake clock:
no database, no HTTP, no real waiting. The same rules against the emulator, end to end, are in
test_push_faults.py (pacing a large push, a minute 429, the day limit's pause)."""

import datetime

import pytest
from django.utils import timezone

from xero_sync.client import Limits
from xero_sync.errors import XeroRateLimited
from xero_sync.models import XeroConnection
from xero_sync.ratelimit import LONGEST_INLINE_WAIT_SECONDS, RATE_LIMIT_RETRIES, PacedGateway, SyncPaused

WINDOW, PER_WINDOW = 2.0, 10


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeGateway:
    """Answers each call with the next of `answers` (an exception is raised), then {} for ever; records the
    fake time of every call."""

    def __init__(self, clock: FakeClock, answers=(), minute_remaining=None):
        self.clock, self.answers = clock, list(answers)
        self.limits = Limits(minute_remaining=minute_remaining)
        self.called_at: list[tuple[float, str, dict]] = []

    def call(self, operation: str, **kwargs) -> dict:
        self.called_at.append((self.clock.now, operation, kwargs))
        answer = self.answers.pop(0) if self.answers else {}
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock(settings):
    settings.XERO_RATE_WINDOW_SECONDS = WINDOW
    settings.XERO_RATE_PER_WINDOW = PER_WINDOW
    return FakeClock()


def paced(gateway: FakeGateway, clock: FakeClock) -> PacedGateway:
    return PacedGateway(gateway, XeroConnection(), sleep=clock.sleep, clock=clock)


def test_calls_stay_one_under_the_minute_limit_in_every_window(clock):
    gateway = FakeGateway(clock)
    pacer = paced(gateway, clock)

    for page in range(30):
        pacer.call("get_invoices", page=page)

    times = [at for at, _, _ in gateway.called_at]
    # one call of every window is left for the organisation's other apps
    busiest = max(sum(1 for other in times if at - WINDOW < other <= at) for at in times)
    assert busiest == PER_WINDOW - 1
    # and it waited only as long as that needs: 30 calls at 9 a window start in the fourth window
    assert clock.now - 1000.0 == pytest.approx(3 * WINDOW)
    assert pacer.calls == 30 and pacer.rate_limited == 0


def test_when_xero_says_one_call_is_left_the_pacer_waits_for_the_window(clock):
    gateway = FakeGateway(clock, minute_remaining=1)  # another app has used the minute up
    pacer = paced(gateway, clock)

    pacer.call("get_contacts")
    pacer.call("get_contacts")

    # the second call waited for the first one's window to pass, though we made only one call
    assert [at - 1000.0 for at, _, _ in gateway.called_at] == [0.0, WINDOW]


def test_a_minute_429_waits_retry_after_and_sends_the_same_request_again(clock):
    gateway = FakeGateway(clock, answers=[XeroRateLimited("minute", 7), {"Invoices": []}], minute_remaining=0)
    pacer = paced(gateway, clock)

    assert pacer.call("put_invoices", invoices={"Invoices": ["one"]}) == {"Invoices": []}

    assert clock.slept == [7.0]
    assert [(operation, kwargs) for _, operation, kwargs in gateway.called_at] == [
        ("put_invoices", {"invoices": {"Invoices": ["one"]}})] * 2
    assert pacer.rate_limited == 1
    # the 429's "0 left" is stale after the wait: believing it would cost a whole window more
    assert gateway.limits.minute_remaining is None


@pytest.mark.parametrize("problem", ["concurrent", "appminute"])
def test_a_429_without_retry_after_backs_off_one_to_three_seconds(clock, problem):
    gateway = FakeGateway(clock, answers=[XeroRateLimited(problem, None)])
    paced(gateway, clock).call("get_contacts")
    assert len(clock.slept) == 1 and 1 <= clock.slept[0] <= 3
    assert len(gateway.called_at) == 2


def test_the_day_limit_pauses_until_xero_says_without_waiting(clock):
    gateway = FakeGateway(clock, answers=[XeroRateLimited("day", 3600)])
    before = timezone.now()

    with pytest.raises(SyncPaused) as paused:
        paced(gateway, clock).call("get_contacts")

    assert before + datetime.timedelta(seconds=3600) <= paused.value.until
    assert paused.value.until <= timezone.now() + datetime.timedelta(seconds=3600)
    assert clock.slept == [] and len(gateway.called_at) == 1


def test_the_day_limit_without_retry_after_pauses_until_utc_midnight(clock):
    gateway = FakeGateway(clock, answers=[XeroRateLimited("day", None)])
    with pytest.raises(SyncPaused) as paused:
        paced(gateway, clock).call("get_contacts")
    until = paused.value.until
    assert (until.hour, until.minute, until.second) == (0, 0, 0) and until > timezone.now()


def test_a_wait_too_long_to_sit_out_ends_the_run_paused_instead_of_holding_a_worker(clock):
    gateway = FakeGateway(clock, answers=[XeroRateLimited("minute", LONGEST_INLINE_WAIT_SECONDS + 1)])
    with pytest.raises(SyncPaused, match="wait 121 s"):
        paced(gateway, clock).call("get_contacts")
    assert clock.slept == []


def test_xero_answering_429_every_time_gives_up_paused_after_the_retries(clock):
    gateway = FakeGateway(clock, answers=[XeroRateLimited("minute", 1)] * (RATE_LIMIT_RETRIES + 1))
    pacer = paced(gateway, clock)
    with pytest.raises(SyncPaused, match="kept answering 429"):
        pacer.call("get_contacts")
    assert len(gateway.called_at) == RATE_LIMIT_RETRIES and pacer.rate_limited == RATE_LIMIT_RETRIES
