"""Pulling what changed in Xero: customer contacts, every sales invoice, payments into pull accounts.

Each kind is read with If-Modified-Since from its cursor (the newest UpdatedDateUTC actually received,
to the second), oldest first, 1,000 to a page, and the cursor is saved after every page: an idle
pull costs one call per kind, and a crash mid-pull resumes where it stopped. What the pull writes is
not recorded in the outbox, so nothing it brings in is pushed back. A record Xero sends that we cannot
read fails alone, visibly, and the pull goes on.

run.py is the loop, failures.py what could not be taken in, and one module per kind (contacts.py,
invoices.py, payments.py) applies Xero's records of that kind.
"""

from ..paging import PAGE_SIZE
from .failures import PullReport
from .run import Pull

__all__ = ["PAGE_SIZE", "Pull", "PullReport"]
