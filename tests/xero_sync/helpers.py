"""Driving the connect flow the way a browser does: our site, Xero's consent screen, back to our site."""

from urllib.parse import urlsplit

import requests


def consent_at_xero(client) -> str:
    """Press Connect, follow Xero's consent (the emulator agrees at once) and return the callback URL."""
    started = client.post("/xero/connect/")
    assert started.status_code == 302, started
    at_xero = requests.get(started["Location"], allow_redirects=False, timeout=5)
    assert at_xero.status_code == 302, at_xero.text
    back = urlsplit(at_xero.headers["Location"])
    assert back.path == "/xero/callback/"
    return f"{back.path}?{back.query}"


def connect(client):
    """The whole connect flow for a single organisation; returns the callback's response."""
    return client.get(consent_at_xero(client))
