import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_as_the_site_does(**kwargs):
    """A worker and beat log through settings.LOGGING, as the web does: one format with the shop's time
    zone named, the secret filter, and the routine ticks at DEBUG. Connecting this signal is how Celery
    is told to leave logging alone (otherwise it installs handlers of its own beside Django's)."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_secrets_in_worker_logs(logger, **kwargs):
    """A worker or beat logs through Celery's own handlers: give them the same secret filter as the site's."""
    from .logs import SecretRedactingFilter

    for handler in logger.handlers:
        handler.addFilter(SecretRedactingFilter())
