"""The production stack as docker-compose.yml and the Dockerfile describe it (no Docker engine runs here:
the files are checked, and the same processes are started for real in test_processes.py)."""

import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from tests.support import COMPOSE_SCHEMA_PATH, REPO_ROOT, need

APP_SERVICES = ("migrate", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_schema(compose):
    need(COMPOSE_SCHEMA_PATH.exists(), f"the Compose schema is not at {COMPOSE_SCHEMA_PATH}")
    schema = json.loads(COMPOSE_SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_the_stack_has_its_services_with_their_commands(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", "migrate", "web", "worker", "beat"}
    assert services["db"]["image"].startswith("postgres:") and services["db"]["volumes"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi:application"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_exactly_one_beat_and_no_other_scheduler(compose):
    beats = [name for name, service in compose["services"].items() if "beat" in service.get("command", [])]
    assert beats == ["beat"]
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1
    assert "-B" not in compose["services"]["worker"]["command"]  # a worker with embedded beat would be a second


def test_the_others_wait_for_migrate_and_everything_is_health_checked_and_restarted(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("db", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_every_setting_reaches_the_app_services(compose):
    settings_source = "\n".join(path.read_text() for path in (REPO_ROOT / "config").glob("*.py"))
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    listed = {line.split("=", 1)[0].lstrip("# ").strip()
              for line in (REPO_ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert read <= listed, f"settings read variables that .env.example does not list: {sorted(read - listed)}"
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == [".env"], name  # .env is a copy of .env.example, filled in
        environment = service["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.production"
        assert environment["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"


def test_the_image_is_slim_runs_as_non_root_and_installs_the_pinned_set():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert "--constraint requirements.lock" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert ".venv" in (REPO_ROOT / ".dockerignore").read_text()


def production_environment(**extra) -> dict:
    keep = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "config.production",
        "SECRET_KEY": "t8Jx!q2v#N0pLz7rW4kY9sB1mC6dE3fG5hJ8kL0nP2rT4vX6zA",
        "ALLOWED_HOSTS": "shop.example.com",
        "XERO_CLIENT_ID": "0123456789ABCDEF0123456789ABCDEF",
        "XERO_CLIENT_SECRET": "a-secret-from-developer.xero.com",
        "XERO_REDIRECT_URI": "https://shop.example.com/xero/callback/",
        "XERO_TOKEN_KEY": "m0YxZ2wrfpvT3WjzJ0VkYk6bqkV0m3qG1v6xqfD5Vb8=",
        "DATABASE_URL": "postgres://shop:pw@db.internal:5432/shop",
        "REDIS_URL": "redis://redis.internal:6379/0",
        **extra,
    }


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO_ROOT, env=production_environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "XERO_TOKEN_KEY"])
def test_production_refuses_to_start_without_its_secrets(missing):
    environment = production_environment()
    del environment[missing]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO_ROOT, env=environment,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert missing in result.stderr


def _check(environment: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True)


def test_production_refuses_the_emulator_unless_asked_explicitly():
    # a forgotten XERO_CLIENT_ID would otherwise run the live shop's books against 127.0.0.1:8765
    environment = production_environment()
    del environment["XERO_CLIENT_ID"], environment["XERO_CLIENT_SECRET"]
    refused = _check(environment)
    assert refused.returncode != 0 and "XERO_ALLOW_EMULATOR" in refused.stderr
    # and asked for, it starts
    allowed = _check({**environment, "XERO_ALLOW_EMULATOR": "true"})
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_production_refuses_a_token_key_derived_from_the_secret_key_even_on_the_emulator():
    environment = production_environment(XERO_ALLOW_EMULATOR="true")
    del environment["XERO_CLIENT_ID"], environment["XERO_CLIENT_SECRET"], environment["XERO_TOKEN_KEY"]
    refused = _check(environment)
    assert refused.returncode != 0 and "XERO_TOKEN_KEY" in refused.stderr


def test_production_check_names_a_loopback_redirect_for_a_real_app():
    result = _check(production_environment(XERO_REDIRECT_URI="http://127.0.0.1:8000/xero/callback/"))
    assert result.returncode != 0 and "xero_sync.E008" in result.stderr
