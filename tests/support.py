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


def database_url() -> str:
    """The URL of the database this test runs on (PostgreSQL), for a process of its own."""
    from django.db import connection

    database = connection.settings_dict
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return (f"postgres://{database['USER']}{password}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}")


def process_environment(xero, **overrides: str) -> dict[str, str]:
    """The environment of a worker or command process on this test's database and emulator, with the test
    process's Xero app and token keys (the stored token is encrypted with them). XERO_EMULATOR_URL alone
    points every Xero endpoint at the emulator (config/settings.py)."""
    from django.conf import settings

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("XERO_", "DATABASE_URL", "REDIS_URL", "CELERY", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url(),
        "XERO_EMULATOR_URL": xero.base_url,
        "XERO_CLIENT_ID": settings.XERO_CLIENT_ID,
        "XERO_CLIENT_SECRET": settings.XERO_CLIENT_SECRET,
        "XERO_REDIRECT_URI": settings.XERO_REDIRECT_URI,
        "XERO_SYNC_NUDGE": "false",
    })
    if settings.XERO_TOKEN_KEYS:
        env["XERO_TOKEN_KEY"] = ",".join(settings.XERO_TOKEN_KEYS)
    env.update(overrides)
    return env
