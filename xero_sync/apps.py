from django.apps import AppConfig


class XeroSyncConfig(AppConfig):
    name = "xero_sync"
    verbose_name = "Xero sync"

    def ready(self) -> None:
        from . import checks, tasks  # noqa: F401  (importing checks registers the system checks)
        from .receivers import connect_receivers
        from .services.outbox import nudge_handler_set

        connect_receivers()
        # The services do not know Celery: the task layer tells the outbox how to nudge a worker.
        nudge_handler_set(tasks.nudge)
