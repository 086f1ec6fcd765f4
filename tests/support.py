"""Helpers shared by the test suite."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
XERO_SPEC_PATH = SHARED_DIR / "xero-openapi" / "xero_accounting.yaml"
COMPOSE_SCHEMA_PATH = SHARED_DIR / "compose-spec" / "compose-spec.json"


def need(available: bool, reason: str) -> None:
    """Skip a test whose service or file is missing; under CI (CI set) that is a failure, not a skip."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide this: {reason}", pytrace=False)
    pytest.skip(reason)
