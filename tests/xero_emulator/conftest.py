"""Fixtures for the emulator's own tests: a live emulator per test and a small HTTP client for it."""

import pytest

from tests.conftest import xero_contract_violations
from xero_emulator.testing import running_emulator

from .helpers import XeroClient


@pytest.fixture
def emulator():
    """A live emulator. Whatever the test sent it (these tests send bad requests on purpose), every body
    it answered must match Xero's official spec."""
    with running_emulator() as running:
        yield running
        problems = xero_contract_violations(running.calls, check_requests=False)
    assert not problems, "emulator answers that break Xero's spec:\n" + "\n".join(problems[:20])


@pytest.fixture
def xero(emulator) -> XeroClient:
    """The Accounting API as the default organisation, with a freshly issued token."""
    return XeroClient(emulator)
