"""A half-configured Xero setup is reported by `manage.py check`, not discovered at the first sync."""

import pytest
from django.core.checks import Error, Warning

from xero_sync.checks import xero_configuration


def ids(settings_overrides, settings) -> set[str]:
    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    return {problem.id for problem in xero_configuration(None)}


def test_the_embedded_defaults_pass(settings):
    assert ids({}, settings) == set()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"XERO_CLIENT_ID": "ABC123", "XERO_CLIENT_SECRET": ""}, "xero_sync.E001"),
        ({"XERO_CLIENT_ID": "", "XERO_CLIENT_SECRET": "s3cret"}, "xero_sync.E002"),
        ({"XERO_REDIRECT_URI": "https://shop.example.com/oauth/"}, "xero_sync.E003"),
        ({"XERO_USING_EMULATOR": False, "XERO_CLIENT_ID": "A", "XERO_CLIENT_SECRET": "B",
          "XERO_REDIRECT_URI": "http://shop.example.com/xero/callback/", "XERO_TOKEN_KEYS": ["x"]}, "xero_sync.E004"),
        ({"XERO_SCOPES": ["accounting.contacts"]}, "xero_sync.E005"),
        ({"XERO_SCOPES": ["offline_access", "accounting.transactions"]}, "xero_sync.W001"),
        ({"XERO_TOKEN_KEYS": ["not-a-key"]}, "xero_sync.E006"),
        ({"DEBUG": False, "XERO_USING_EMULATOR": False, "XERO_CLIENT_ID": "A", "XERO_CLIENT_SECRET": "B",
          "XERO_REDIRECT_URI": "https://shop.example.com/xero/callback/", "XERO_TOKEN_KEYS": []}, "xero_sync.E007"),
        # a real app with its redirect on this machine: an error on a site, a warning for a local try
        ({"DEBUG": False, "XERO_USING_EMULATOR": False, "XERO_CLIENT_ID": "A", "XERO_CLIENT_SECRET": "B",
          "XERO_REDIRECT_URI": "http://127.0.0.1:8000/xero/callback/", "XERO_TOKEN_KEYS": ["x"]}, "xero_sync.E008"),
        ({"DEBUG": True, "XERO_USING_EMULATOR": False, "XERO_CLIENT_ID": "A", "XERO_CLIENT_SECRET": "B",
          "XERO_REDIRECT_URI": "https://localhost/xero/callback/"}, "xero_sync.E008"),
        # tokens in clear over the network
        ({"XERO_TOKEN_URL": "http://identity.example.com/connect/token"}, "xero_sync.E009"),
        ({"XERO_EMULATOR_URL": "http://10.0.0.5:8765"}, "xero_sync.E009"),
    ],
)
def test_each_half_configuration_is_named(settings, overrides, expected):
    assert expected in ids(overrides, settings)


def test_a_loopback_redirect_is_only_a_warning_with_debug_on(settings):
    for name, value in {"DEBUG": True, "XERO_USING_EMULATOR": False, "XERO_CLIENT_ID": "A",
                        "XERO_CLIENT_SECRET": "B", "XERO_REDIRECT_URI": "http://localhost:8000/xero/callback/"}.items():
        setattr(settings, name, value)
    (problem,) = [p for p in xero_configuration(None) if p.id == "xero_sync.E008"]
    assert isinstance(problem, Warning) and not isinstance(problem, Error)
    settings.DEBUG = False
    (problem,) = [p for p in xero_configuration(None) if p.id == "xero_sync.E008"]
    assert isinstance(problem, Error)


def test_plain_http_to_loopback_is_fine(settings):
    settings.XERO_TOKEN_URL = "http://127.0.0.1:8765/connect/token"
    settings.XERO_API_URL = "http://localhost:8765/api.xro/2.0"
    assert "xero_sync.E009" not in ids({}, settings)
