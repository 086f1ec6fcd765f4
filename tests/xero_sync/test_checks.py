"""A half-configured Xero setup is reported by `manage.py check`, not discovered at the first sync."""

import pytest

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
    ],
)
def test_each_half_configuration_is_named(settings, overrides, expected):
    assert expected in ids(overrides, settings)
