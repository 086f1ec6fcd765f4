"""Reading what changed in Xero since a cursor, oldest first, a page at a time.

A cursor holds the newest UpdatedDateUTC actually received for one kind of record. One reader per run,
shared by the contact index and the pull, so a cursor one of them reads is the one the other advances.
"""

import datetime
from collections.abc import Callable, Iterator

from .. import mappers
from ..models import PullCursor
from ..ratelimit import PacedGateway
from . import paging

# Told how far a long run has got: (what, done, total or None when unknown). The command draws a bar.
Progress = Callable[[str, int, int | None], None]


def no_progress(what: str, done: int, total: int | None) -> None:
    return None


class ChangesReader:
    def __init__(self, *, tenant_id, gateway: PacedGateway, full: bool = False, progress: Progress | None = None):
        self.tenant_id = tenant_id
        self.gateway = gateway
        self.full = full  # read everything, not only what changed since the cursor
        self.progress = progress or no_progress
        self.seen: dict[str, datetime.datetime] = {}  # per cursor: the newest stamp read in this run

    def cursor(self, entity: PullCursor.Entity) -> PullCursor:
        cursor, _ = PullCursor.objects.get_or_create(tenant_id=self.tenant_id, entity=entity)
        return cursor

    def pages(self, operation: str, body_key: str, entity: PullCursor.Entity, *, advance: bool = True,
              **params) -> Iterator[list[dict]]:
        """Yield pages of records changed since the cursor. With `advance`, the cursor moves past each page
        once the caller has handled it (a crash re-reads at most that page); without, the newest stamp
        seen is kept for the caller to commit with advance() when it has applied everything."""
        cursor = self.cursor(entity)
        # Xero's If-Modified-Since is "at or after", to the second: from the watermark's own second, so a
        # record stamped in that second after our last read is not missed, and little else is read again.
        since = None if self.full or cursor.watermark is None else cursor.watermark.replace(microsecond=0)
        if since is not None:
            params["if_modified_since"] = since
        self.progress(f"{entity} read", 0, None)
        done = 0
        for rows, answer in paging.xero_pages(self.gateway, operation, body_key, order="UpdatedDateUTC ASC",
                                              **params):
            yield rows
            done += len(rows)
            self.progress(f"{entity} read", done, (answer.get("pagination") or {}).get("itemCount"))
            stamps = [mappers.parse_xero_datetime(row["UpdatedDateUTC"]) for row in rows
                      if isinstance(row.get("UpdatedDateUTC"), str) and mappers.MS_DATE.fullmatch(row["UpdatedDateUTC"])]
            if stamps:
                self.seen[entity] = max(filter(None, [self.seen.get(entity), *stamps]))
                if advance:
                    self.advance(entity)

    def advance(self, entity: PullCursor.Entity) -> None:
        newest = self.seen.get(entity)
        if newest is not None:
            PullCursor.objects.filter(tenant_id=self.tenant_id, entity=entity).exclude(
                watermark__gte=newest).update(watermark=newest)
