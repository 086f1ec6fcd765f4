"""Reading Xero a page or a URL's worth at a time: the one page loop and the one id-chunking rule.

Xero pages its lists 1,000 records to a page at most, and a page shorter than asked for is the last.
Ids or numbers asked for by name go in the URL (`IDs=...`, `InvoiceNumbers=...`), and Xero's URLs give
out at about 2 KB: 40 GUIDs (37 characters each with the comma) fit with room for the other parameters.
"""

from collections.abc import Iterable, Iterator

from ..ratelimit import PacedGateway

PAGE_SIZE = 1000
# Ids or numbers per call when asking for records by name: what fits in Xero's ~2 KB URL (see above).
IDS_PER_URL = 40


def xero_pages(gateway: PacedGateway, operation: str, body_key: str, **params) -> Iterator[tuple[list[dict], dict]]:
    """Yield (records, whole answer) page by page until the last: a page shorter than asked for, or the
    page Xero's `pagination.pageCount` says is the last (docs/xero-api.md section 3). Without the page
    count, N records in full pages cost one call more (an empty page) than the N/1,000 they fill."""
    page_size = PAGE_SIZE  # read at call time: tests shrink pages to see many of them
    page = 1
    while True:
        answer = gateway.call(operation, page=page, page_size=page_size, **params)
        rows = answer.get(body_key, [])
        yield rows, answer
        if len(rows) < page_size or page >= _page_count(answer, default=page + 1):
            return
        page += 1


def _page_count(answer: dict, *, default: int) -> int:
    """Xero's page count, when the answer carries a usable one."""
    count = (answer.get("pagination") or {}).get("pageCount")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else default


def id_chunks(ids: Iterable) -> Iterator[list]:
    """The ids (or numbers), sorted, a URL's worth at a time."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), IDS_PER_URL):
        yield ordered[start:start + IDS_PER_URL]
