"""Pushing recorded changes to Xero: contacts, then invoices, then payments, 50 to a call.

Exactly-once effect in Xero comes from three guards (design.md, "Exactly-once effect"):
- before a batch is sent, its records are marked in flight (a short transaction of its own); if the
  worker dies or the call times out, the next run finds them in flight without a Xero id and looks them
  up by the key Xero holds (ContactNumber, InvoiceNumber, the payment's Reference) before sending again;
- every write carries an Idempotency-Key derived from the batch's content and its outbox rows, so a
  prompt retry of the same batch is replayed by Xero instead of executed twice;
- unchanged content (same payload hash) is not sent at all.
No database transaction is open while a call is in flight.

run.py is the loop, links.py the link bookkeeping, sender.py the batches and their results, and one
module per kind (contacts.py, invoices.py, payments.py) decides what of that kind goes and how.
"""

from .run import CHUNK_RECORDS, Push
from .sender import (
           BACKOFF_BASE_SECONDS,
           BACKOFF_CAP_SECONDS,
           BATCH_SIZE,
           MAX_ATTEMPTS,
           PushReport,
           backoff_delay,
)

__all__ = ["BACKOFF_BASE_SECONDS", "BACKOFF_CAP_SECONDS", "BATCH_SIZE", "CHUNK_RECORDS", "MAX_ATTEMPTS", "Push",
           "PushReport", "backoff_delay"]
