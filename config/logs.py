"""Logging helpers: a JSON formatter (LOG_FORMAT=json) and the filter that keeps secrets out of every log.

The libraries under the Xero gateway (requests_oauthlib, oauthlib, urllib3, xero_python) log tokens, the
client secret and PKCE verifiers at DEBUG; settings.py pins them to WARNING. This filter is the second
line: whatever still reaches a handler has token-like fields, authorization headers and JWTs masked, and
the OAuth callback's query string (the authorization code and state) dropped, in line and JSON format.
"""

import datetime
import json
import logging
import re
from zoneinfo import ZoneInfo

REDACTED = "[redacted]"
SECRET_FIELDS = r"access_token|refresh_token|id_token|client_secret|code_verifier|code|state|token|password"
_PATTERNS = [
    # the callback's query string, as an access log writes the request line
    (re.compile(r"(/xero/callback/?)\?[^\s\"']*"), rf"\1?{REDACTED}"),
    # form or query encoded: access_token=...&code=...
    (re.compile(rf"(?i)\b({SECRET_FIELDS})=[^&\s\"',;)}}]+"), rf"\1={REDACTED}"),
    # JSON or a Python dict's repr: "access_token": "..." / 'code_verifier': '...'
    (re.compile(rf"""(?i)(["']({SECRET_FIELDS})["']\s*:\s*)(["'])(?:\\.|(?!\3).)*\3"""), rf"\1\3{REDACTED}\3"),
    # Authorization headers
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{12,}=*"), rf"\1 {REDACTED}"),
    # a JWT anywhere (Xero's access and id tokens are JWTs)
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretRedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it; never break the caller
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ZonedFormatter(logging.Formatter):
    """Times in the shop's zone (TIME_ZONE, from SHOP_TIME_ZONE), the zone named: `2026-12-02 10:11:05,123
    NZDT`, so a log line, the admin and the emulator's pages can be read against each other without
    guessing which clock each keeps. `format` is dictConfig's name for the format string."""

    def __init__(self, format: str | None = None, datefmt: str | None = None, zone: str = "UTC"):
        super().__init__(format, datefmt)
        self.zone = ZoneInfo(zone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, self.zone)
        return moment.strftime(datefmt or f"%Y-%m-%d %H:%M:%S,{int(record.msecs):03d} %Z")


# The beat's tick every ten seconds and the worker's "received" and "succeeded" lines for it: routine,
# so DEBUG. A tick that syncs says so in the sync's own line; one that fails is still an ERROR.
ROUTINE_TASKS = ("xero_sync.sync_if_due", "xero-sync-tick")
ROUTINE_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


class RoutineTicksFilter(logging.Filter):
    """Demotes the routine ticks' INFO lines to DEBUG: shown only with LOG_LEVEL=DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.name not in ROUTINE_LOGGERS:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it
            return True
        if not any(task in message for task in ROUTINE_TASKS):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


class JsonFormatter(ZonedFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            # exc_text is the traceback as the redacting filter left it
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
