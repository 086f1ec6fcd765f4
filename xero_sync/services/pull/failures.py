"""What the pull could not take in: reported once per run, and kept (PullRetry) to fetch again by id, since
the cursor moves on past it."""

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from ...models import PullRetry, XeroRecordKind

logger = logging.getLogger(__name__)


@dataclass
class PullReport:
    pulled: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class PullFailures:
    def __init__(self, *, tenant_id, report: PullReport):
        self.tenant_id = tenant_id
        self.report = report
        # Records that failed in this run (reported once), and those left over from earlier runs.
        self._failed: dict[str, dict[str, str]] = defaultdict(dict)
        self._retrying: dict[str, set[str]] = defaultdict(set)
        for kind, xero_id in PullRetry.objects.filter(tenant_id=tenant_id).values_list("entity", "xero_id"):
            self._retrying[kind].add(str(xero_id))

    def fail(self, kind: XeroRecordKind, what, error: Exception | str, *, xero_id=None) -> None:
        """Report a record that could not be taken in, once per run, and keep it to fetch again next time."""
        error = describe(error) if isinstance(error, Exception) else error
        if xero_id is not None:
            if str(xero_id) in self._failed[kind]:
                return
            self._failed[kind][str(xero_id)] = error
            try:
                record_id = uuid.UUID(str(xero_id))
            except ValueError:
                record_id = None  # an id Xero should never send: nothing to fetch it again by
            if record_id:
                PullRetry.objects.update_or_create(tenant_id=self.tenant_id, entity=kind, xero_id=record_id,
                                                   defaults={"reason": error[:2000]})
        self.report.failed[kind] += 1
        message = f"{kind} {what} from Xero: {error}"
        self.report.errors.append(message)
        logger.warning("xero pull %s", message)

    def landed(self, kind: XeroRecordKind, xero_id) -> None:
        if str(xero_id) in self._retrying[kind]:
            PullRetry.objects.filter(tenant_id=self.tenant_id, entity=kind, xero_id=xero_id).delete()
            self._retrying[kind].discard(str(xero_id))

    def failed_in_this_run(self, kind: XeroRecordKind, xero_id) -> bool:
        return str(xero_id) in self._failed[kind]

    def reason(self, kind: XeroRecordKind, xero_id) -> str | None:
        return self._failed[kind].get(str(xero_id))

    def to_fetch_again(self, kind: XeroRecordKind) -> set[str]:
        """What earlier pulls could not take in and this one has not failed on yet."""
        return self._retrying[kind] - set(self._failed[kind])


def describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in error.message_dict.items()) \
            if hasattr(error, "error_dict") else " ".join(error.messages)
    return str(error)
