"""What the pull could not take in: reported once per run, and kept (PullRetry) to fetch again by id, since
the cursor moves on past it.

A record whose own values can never be stored here (a total beyond our 14-digit columns, say) is not kept:
fetching it again by id would bring the same record and the same error on every run, a call and an error
each time. It is reported once, in the run's errors and the log, as given up; when the bookkeeper corrects
it in Xero its UpdatedDateUTC moves, and the ordinary changed-since read brings it in again. Only failures
that depend on something else (its contact not in yet, a database hiccup) are fetched again.
"""

import contextlib
import datetime
import decimal
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError

from ... import mappers
from ...models import PullRetry, XeroRecordKind

logger = logging.getLogger(__name__)

# Field validation codes saying a value is too large or too precise for its column.
TOO_LARGE_CODES = frozenset({"max_digits", "max_whole_digits", "max_decimal_places"})
# What taking one record in fails with when Xero sent something we cannot read or hold.
RECORD_ERRORS = (ValidationError, ValueError, KeyError, ArithmeticError, DatabaseError)
GIVEN_UP = ("It cannot be stored as Xero holds it, so it is not fetched again; it comes in by itself once "
            "corrected in Xero.")


@dataclass
class PullReport:
    pulled: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class PullFailures:
    def __init__(self, *, tenant_id, report: PullReport, seen_up_to: dict[str, datetime.datetime] | None = None):
        """`seen_up_to`: per kind, the newest UpdatedDateUTC earlier pulls received (the cursors as this run
        began; empty for a full pull): a record no newer was read, and dealt with, before."""
        self.tenant_id = tenant_id
        self.report = report
        self.seen_up_to = seen_up_to or {}
        # Records that failed in this run (reported once), and those left over from earlier runs.
        self._failed: dict[str, dict[str, str]] = defaultdict(dict)
        self._retrying: dict[str, set[str]] = defaultdict(set)
        for kind, xero_id in PullRetry.objects.filter(tenant_id=tenant_id).values_list("entity", "xero_id"):
            self._retrying[kind].add(str(xero_id))

    def fail(self, kind: XeroRecordKind, what, error: Exception | str, *, xero_id=None, updated=None) -> None:
        """Report a record that could not be taken in, once per run, and keep it to fetch again next time,
        unless it can never be stored as it is (see the module's docstring). `updated`: the record's
        UpdatedDateUTC as Xero sent it."""
        permanent = isinstance(error, Exception) and cannot_be_stored(error)
        error = describe(error) if isinstance(error, Exception) else error
        if xero_id is not None:
            if str(xero_id) in self._failed[kind]:
                return
            self._failed[kind][str(xero_id)] = error
            if permanent and self._given_up_before(kind, xero_id, updated):
                return  # re-read where the cursor overlaps its last second: reported when first met
            try:
                record_id = uuid.UUID(str(xero_id))
            except ValueError:
                record_id = None  # an id Xero should never send: nothing to fetch it again by
            if record_id and permanent:
                PullRetry.objects.filter(tenant_id=self.tenant_id, entity=kind, xero_id=record_id).delete()
                self._retrying[kind].discard(str(xero_id))
            elif record_id:
                PullRetry.objects.update_or_create(tenant_id=self.tenant_id, entity=kind, xero_id=record_id,
                                                   defaults={"reason": error[:2000]})
        self.report.failed[kind] += 1
        message = f"{kind} {what} from Xero: {error}" + (f" {GIVEN_UP}" if permanent else "")
        self.report.errors.append(message)
        logger.warning("xero pull %s%s", "gave up on " if permanent else "", message)

    def _given_up_before(self, kind: XeroRecordKind, xero_id, updated) -> bool:
        """Whether an earlier pull already met this very version and gave up on it: no newer than what
        earlier pulls received, and not among those kept to fetch again (a record that failed for another
        reason before, say its contact, and turns out unstorable now, is reported now)."""
        seen_up_to = self.seen_up_to.get(kind)
        try:
            stamp = mappers.parse_xero_datetime(updated) if isinstance(updated, str) else None
        except (ValueError, OverflowError, OSError):
            stamp = None
        return (seen_up_to is not None and stamp is not None and stamp <= seen_up_to
                and str(xero_id) not in self._retrying[kind])

    @contextlib.contextmanager
    def taking_in(self, kind: XeroRecordKind, row: dict, *, what, id_key: str):
        """Around taking one record in: a failure is reported once and kept (fail), the rest of the page
        goes on; a success clears an earlier failure of it (landed)."""
        try:
            yield
        except RECORD_ERRORS as error:
            self.fail(kind, what, error, xero_id=row.get(id_key), updated=row.get("UpdatedDateUTC"))
        else:
            self.landed(kind, row.get(id_key))

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


def cannot_be_stored(error: Exception) -> bool:
    """Whether the error lies in the record's own values as Xero holds them, so the same record fails the
    same way however often it is fetched: a number beyond its column (the database's DataError, a field's
    max_digits), or one that cannot even be held to the cent."""
    if isinstance(error, DataError | decimal.InvalidOperation):
        return True
    if isinstance(error, ValidationError):
        problems = ([problem for problems in error.error_dict.values() for problem in problems]
                    if hasattr(error, "error_dict") else error.error_list)
        return bool(problems) and all(problem.code in TOO_LARGE_CODES for problem in problems)
    return False


def describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{field}: {' '.join(problems)}" for field, problems in error.message_dict.items()) \
            if hasattr(error, "error_dict") else " ".join(error.messages)
    return str(error)
