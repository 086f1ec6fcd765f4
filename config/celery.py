import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_secrets_in_worker_logs(logger, **kwargs):
    """A worker or beat logs through Celery's own handlers: give them the same secret filter as the site's."""
    from .logs import SecretRedactingFilter

    for handler in logger.handlers:
        handler.addFilter(SecretRedactingFilter())
