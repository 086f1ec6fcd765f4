"""The error mail to ADMINS, masked as the logs are (config/logs.py).

Its own module: AdminEmailHandler imports it when it first sends, so the logging set-up (which runs before
the apps are ready, in web, worker and beat) does not import Django's debug views.
"""

import re

from django.views.debug import ExceptionReporter

from .logs import REDACTED, SECRET_FIELDS, redact


class SecretRedactingExceptionReporter(ExceptionReporter):
    """The error mail to ADMINS (a 500 with DEBUG off) reads the request itself, not the log line: its GET
    parameters and request headers (QUERY_STRING, RAW_URI: the callback's code and state) pass the same
    masks here."""

    def get_traceback_data(self) -> dict:
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (key, REDACTED if re.fullmatch(SECRET_FIELDS, key, re.IGNORECASE) else value)
                for key, value in data["request_GET_items"]]
        if isinstance(data.get("request_meta"), dict):
            data["request_meta"] = {key: redact(value) if isinstance(value, str) else value
                                    for key, value in data["request_meta"].items()}
        return data

    def get_traceback_text(self) -> str:
        # the request URL, the exception's own words and the frames' text are masked as log lines are
        return redact(super().get_traceback_text())

    def get_traceback_html(self) -> str:
        return redact(super().get_traceback_html())
