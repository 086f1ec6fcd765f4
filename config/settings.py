"""Django settings. Every value comes through config.env; the defaults run the embedded site."""

from email.utils import getaddresses
from pathlib import Path

from .env import BASE_DIR, VAR_DIR, env

VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production")
# Off unless asked for: a 500 page with DEBUG on shows every setting and local variable. Only the embedded
# run (`make run`, config/embedded.py) turns it on for the processes it starts.
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ecommerce",
    "xero_sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files from the app itself in production (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "xero_sync.context_processors.xero_status",
            ],
        },
    },
]

# SQLite under var/ by default; DATABASE_URL=postgres://user@host:5432/db switches to PostgreSQL.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'shop.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the embedded database: wait for locks, do not fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-nz"
# The shop's own time zone: sale dates and "today" are in it. Storage is UTC.
TIME_ZONE = env.str("SHOP_TIME_ZONE", default="Pacific/Auckland")
USE_I18N = True
USE_TZ = True
# Date-and-time formats that name the zone (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
# The site's own files (the favicon); the apps' static folders are found as usual.
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it, even before collectstatic

# The shop's home currency: the default for new sales.
SHOP_CURRENCY = env.str("SHOP_CURRENCY", default="NZD").upper()

# The staff login that `seed_demo` creates for the embedded run.
DEMO_ADMIN_USERNAME = env.str("DEMO_ADMIN_USERNAME", default="admin")
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="admin")

ADMINS = getaddresses(env.list("ADMINS", default=[]))
SERVER_EMAIL = env.str("SERVER_EMAIL", default="shop@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)

# --- Xero -------------------------------------------------------------------------------------------
# With no client id configured, the site talks to the built-in emulator (`python -m xero_emulator`),
# and every Xero page says so. XERO_EMULATOR_URL points every endpoint at one emulator.
XERO_CLIENT_ID = env.str("XERO_CLIENT_ID", default="")
XERO_CLIENT_SECRET = env.str("XERO_CLIENT_SECRET", default="")
# `make run` starts the emulator on XERO_EMULATOR_PORT; the site looks for it there unless told otherwise.
XERO_EMULATOR_PORT = env.int("XERO_EMULATOR_PORT", default=8765)
XERO_EMULATOR_URL = env.str("XERO_EMULATOR_URL",
                            default="" if XERO_CLIENT_ID else f"http://127.0.0.1:{XERO_EMULATOR_PORT}")
XERO_USING_EMULATOR = bool(XERO_EMULATOR_URL)
if XERO_USING_EMULATOR:
    _emulator = XERO_EMULATOR_URL.rstrip("/")
    XERO_CLIENT_ID = XERO_CLIENT_ID or "emulator-client"
    XERO_CLIENT_SECRET = XERO_CLIENT_SECRET or "emulator-secret"
    _xero_defaults = {
        "authorize": f"{_emulator}/identity/connect/authorize",
        "token": f"{_emulator}/connect/token",
        "revoke": f"{_emulator}/connect/revocation",
        "connections": f"{_emulator}/connections",
        "api": f"{_emulator}/api.xro/2.0",
    }
else:
    _xero_defaults = {
        "authorize": "https://login.xero.com/identity/connect/authorize",
        "token": "https://identity.xero.com/connect/token",
        "revoke": "https://identity.xero.com/connect/revocation",
        "connections": "https://api.xero.com/connections",
        "api": "https://api.xero.com/api.xro/2.0",
    }
XERO_AUTHORIZE_URL = env.str("XERO_AUTHORIZE_URL", default=_xero_defaults["authorize"])
XERO_TOKEN_URL = env.str("XERO_TOKEN_URL", default=_xero_defaults["token"])
XERO_REVOKE_URL = env.str("XERO_REVOKE_URL", default=_xero_defaults["revoke"])
XERO_CONNECTIONS_URL = env.str("XERO_CONNECTIONS_URL", default=_xero_defaults["connections"])
XERO_API_URL = env.str("XERO_API_URL", default=_xero_defaults["api"])
# Register exactly this URL as the app's redirect URI at developer.xero.com.
XERO_REDIRECT_URI = env.str("XERO_REDIRECT_URI", default="http://127.0.0.1:8000/xero/callback/")
# Granular scopes: required of Xero apps created since March 2026 (docs/xero-api.md section 9).
XERO_SCOPES = env.list(
    "XERO_SCOPES",
    default=["openid", "profile", "email", "offline_access", "accounting.contacts", "accounting.invoices",
             "accounting.payments", "accounting.settings.read"],
)
# Encrypts the stored OAuth tokens (Fernet keys, comma-separated: the first encrypts, all decrypt, so a
# key can be rotated). Unset: a key derived from SECRET_KEY, fine for the embedded run only.
XERO_TOKEN_KEYS = env.list("XERO_TOKEN_KEY", default=[])
# Seconds for every HTTP call to Xero (connect, read); a hung call must never hold a worker.
XERO_HTTP_TIMEOUT = env.int("XERO_HTTP_TIMEOUT", default=30)
# The webhook signing key from the app's Webhooks page at developer.xero.com; unset, /xero/webhooks/
# answers 401 to everything.
XERO_WEBHOOK_KEY = env.str("XERO_WEBHOOK_KEY", default="")
# Starting values of the quiet period and its cap; staff change them on the Xero settings page.
XERO_SYNC_DEBOUNCE_SECONDS = env.int("XERO_SYNC_DEBOUNCE_SECONDS", default=120)
XERO_SYNC_MAX_WAIT_SECONDS = env.int("XERO_SYNC_MAX_WAIT_SECONDS", default=600)
# After a change, ask a worker to look once the quiet period is over (the beat tick looks anyway).
XERO_SYNC_NUDGE = env.bool("XERO_SYNC_NUDGE", default=True)
# Xero's per-organisation minute limit, which the drain paces itself under. Benchmarks shorten the
# window together with the emulator's; nobody needs to change these for real Xero.
XERO_RATE_WINDOW_SECONDS = env.float("XERO_RATE_WINDOW_SECONDS", default=60)
XERO_RATE_PER_WINDOW = env.int("XERO_RATE_PER_WINDOW", default=60)
# seed_demo's invented shop goes to the emulator, but never to a real organisation unless this says so.
XERO_PUSH_DEMO_DATA = env.bool("XERO_PUSH_DEMO_DATA", default=False)

# --- Celery -----------------------------------------------------------------------------------------
# With REDIS_URL set, Redis is the broker. Without it, kombu's filesystem transport under var/ carries
# the messages, so the embedded run needs no server.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # The host means nothing to this transport; naming it keeps kombu from warning that none was given.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The static beat schedule. The tick is the backstop for a lost nudge: pending changes are pushed within
# ten seconds of their due time even if no worker heard about them.
CELERY_BEAT_SCHEDULE: dict = {
    "xero-sync-tick": {"task": "xero_sync.sync_if_due", "schedule": 10.0},
    # Hourly look; it syncs only when no run succeeded in the last 24 hours.
    "xero-sync-daily": {"task": "xero_sync.sync_daily", "schedule": 3600.0},
    "xero-notify-digest": {"task": "xero_sync.notify_digest", "schedule": 3600.0},
    "xero-housekeeping": {"task": "xero_sync.housekeeping", "schedule": 3600.0},
}

# One line per event; LOG_FORMAT=json makes each line a JSON object for a log collector. Secrets never
# reach a log: the libraries that log tokens, the client secret and PKCE verifiers at DEBUG are pinned to
# WARNING whatever LOG_LEVEL says, and every record passes a filter that masks what looks like one
# (config/logs.py), including the OAuth callback's query string in the development server's access log.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "config.logs.SecretRedactingFilter"},
                "routine_ticks": {"()": "config.logs.RoutineTicksFilter"},
                "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    # Times in the shop's zone, named (NZDT), in every process: web, worker and beat log through this.
    "formatters": {
        "line": {"()": "config.logs.ZonedFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
                 "zone": TIME_ZONE},
        "json": {"()": "config.logs.JsonFormatter", "zone": TIME_ZONE},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["routine_ticks", "redact_secrets"],
                             "formatter": env.str("LOG_FORMAT", default="line")},
                 # a 500 with DEBUG off mails ADMINS, as Django's default does, masked as the log is
                 "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                                 "filters": ["require_debug_false", "redact_secrets"],
                                 "reporter_class": "config.error_reports.SecretRedactingExceptionReporter"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        **{name: {"level": "WARNING"} for name in ("requests_oauthlib", "oauthlib", "urllib3", "xero_python")},
        # Django's own loggers keep their default handlers unless replaced here, and those do not redact:
        # an error on /xero/callback/?code=... was printed (DEBUG) or mailed (not DEBUG) in clear.
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
        # runserver's access log: through the redacting handler instead of Django's own
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# /healthz reports unhealthy when the last successful Xero sync is older than this (a daily run at least).
HEALTH_MAX_SYNC_AGE_SECONDS = env.int("HEALTH_MAX_SYNC_AGE_SECONDS", default=26 * 3600)
