"""Signal receivers: they only record which record changed (no I/O, no payload).

A save that changes nothing Xero holds records nothing: each instance remembers the Xero-relevant values
it was loaded with, and post_save compares. Deletions record nothing: they never reach Xero (a deleted
line changes its sale, which is recorded). Replacing a sale's lines in bulk sends no per-line signal:
the shop sends `sale_lines_replaced` instead.
"""

from operator import itemgetter

from django.db.models.signals import post_delete, post_init, post_save

from ecommerce.models import Contact, Receipt, Refund, Sale, SaleLine
from ecommerce.signals import sale_lines_replaced

from . import mappers
from .models import RecordKind
from .services.outbox import outbox_record

# What Xero holds of each record: the fields its payload is built from (declared beside the mappers), and
# what decides whether it goes to Xero at all (xero_sync.selectors: a sale goes once confirmed).
XERO_FIELDS = {
    Contact: mappers.CONTACT_FIELDS_SENT,
    Sale: (*mappers.SALE_FIELDS_SENT, "status"),
    SaleLine: mappers.SALE_LINE_FIELDS_SENT,
    Receipt: mappers.RECEIPT_FIELDS_SENT,
    Refund: mappers.REFUND_FIELDS_SENT,
}
KINDS = {Contact: RecordKind.CONTACT, Sale: RecordKind.SALE, Receipt: RecordKind.RECEIPT, Refund: RecordKind.REFUND}
# Read straight from the instance's __dict__ (a loaded field's value lives there under its attname): on
# every instance the ORM builds this runs, so it must cost next to nothing. A field missing from the
# __dict__ was deferred (.only()/.defer()): a KeyError rather than a query to fetch it.
_XERO_VALUES = {model: itemgetter(*fields) for model, fields in XERO_FIELDS.items()}


def _values(instance) -> tuple | None:
    try:
        return _XERO_VALUES[type(instance)](instance.__dict__)
    except KeyError:
        return None  # partly loaded: unknown, so its next save counts as a change


def remember_loaded_values(sender, instance, **kwargs) -> None:
    instance._xero_loaded = _values(instance)


def record_change(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    current = _values(instance)
    changed = created or current is None or current != getattr(instance, "_xero_loaded", None)
    instance._xero_loaded = current
    if not changed:
        return
    if sender is SaleLine:
        outbox_record(RecordKind.SALE, instance.sale_id)
    else:
        outbox_record(KINDS[sender], instance.pk)


def record_line_removed(sender, instance, **kwargs) -> None:
    outbox_record(RecordKind.SALE, instance.sale_id)


def record_lines_replaced(sender, sale, **kwargs) -> None:
    outbox_record(RecordKind.SALE, sale.pk)


def connect_receivers() -> None:
    for model in XERO_FIELDS:
        post_init.connect(remember_loaded_values, sender=model, dispatch_uid=f"xero-loaded-{model.__name__}")
        post_save.connect(record_change, sender=model, dispatch_uid=f"xero-record-{model.__name__}")
    post_delete.connect(record_line_removed, sender=SaleLine, dispatch_uid="xero-line-removed")
    sale_lines_replaced.connect(record_lines_replaced, sender=Sale, dispatch_uid="xero-lines-replaced")


def disconnect_receivers() -> None:
    """Stop recording (benchmarks measure what recording costs against this)."""
    for model in XERO_FIELDS:
        post_init.disconnect(sender=model, dispatch_uid=f"xero-loaded-{model.__name__}")
        post_save.disconnect(sender=model, dispatch_uid=f"xero-record-{model.__name__}")
    post_delete.disconnect(sender=SaleLine, dispatch_uid="xero-line-removed")
    sale_lines_replaced.disconnect(sender=Sale, dispatch_uid="xero-lines-replaced")
