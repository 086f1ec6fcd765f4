"""Production settings: the embedded defaults, hardened. Everything secret comes from the environment,
and a missing one stops the start rather than running with a default.

    DJANGO_SETTINGS_MODULE=config.production
"""

from django.core.exceptions import ImproperlyConfigured

from .env import env
from .settings import *  # noqa: F403

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")  # no default: required
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")  # required, e.g. shop.example.com
# A production site on the emulator is almost always a forgotten XERO_CLIENT_ID: its books would silently
# go nowhere. Running one on purpose (a staging copy, a demo) takes saying so.
if XERO_USING_EMULATOR and not env.bool("XERO_ALLOW_EMULATOR", default=False):  # noqa: F405
    raise ImproperlyConfigured(
        f"This production site would talk to the Xero emulator ({XERO_EMULATOR_URL}): XERO_CLIENT_ID "  # noqa: F405
        "is not set, or XERO_EMULATOR_URL is. Set XERO_CLIENT_ID and XERO_CLIENT_SECRET (and no "
        "XERO_EMULATOR_URL), or XERO_ALLOW_EMULATOR=true to run on the emulator on purpose.")
# No key derived from SECRET_KEY here, emulator or not: rotating SECRET_KEY must not lock the site out of
# its tokens, and a secret used for one thing should not quietly be the key to another.
if not XERO_TOKEN_KEYS:  # noqa: F405
    raise ImproperlyConfigured("Set XERO_TOKEN_KEY: it encrypts the stored Xero tokens.")

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# The load balancer's health check speaks plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# The header alone enrols nothing: submitting the domain to the preload list is a separate, manual step.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="smtp://localhost:25")
vars().update(EMAIL_CONFIG)
