"""Signal receivers: they only record which record changed (no I/O, no payload).

A save that changes nothing Xero holds records nothing: each instance remembers the Xero-relevant values
it was loaded with, and post_save compares. Deletions record nothing: they never reach Xero.
"""

from django.db.models.signals import post_delete, post_init, post_save

from ecommerce.models import Contact, Receipt, Sale, SaleLine

from .models import RecordKind
from .services.outbox import outbox_record

XERO_FIELDS = {
    Contact: ("first_name", "last_name", "company_name", "email", "phone", "address_line1", "address_line2",
              "city", "region", "postcode", "country"),
    Sale: ("contact_id", "date", "due_date", "currency", "line_amount_type", "status", "reference"),
    SaleLine: ("sale_id", "position", "kind", "description", "quantity", "unit_amount", "discount_rate",
               "tax_rate", "tax_code", "account_code", "item_code"),
    Receipt: ("sale_id", "payment_method_id", "amount", "date", "reference"),
}
KINDS = {Contact: RecordKind.CONTACT, Sale: RecordKind.SALE, Receipt: RecordKind.RECEIPT}


def _values(instance) -> tuple:
    return tuple(getattr(instance, field) for field in XERO_FIELDS[type(instance)])


def remember_loaded_values(sender, instance, **kwargs) -> None:
    # A partly loaded instance (.only()/.defer()) would fetch each missing field here: leave it unknown,
    # and a later save of it simply counts as a change.
    loaded = instance.pk and not instance.get_deferred_fields().intersection(XERO_FIELDS[sender])
    instance._xero_loaded = _values(instance) if loaded else None


def record_change(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    current = _values(instance)
    changed = created or current != getattr(instance, "_xero_loaded", None)
    instance._xero_loaded = current
    if not changed:
        return
    if sender is SaleLine:
        outbox_record(RecordKind.SALE, instance.sale_id)
    else:
        outbox_record(KINDS[sender], instance.pk)


def record_line_removed(sender, instance, **kwargs) -> None:
    outbox_record(RecordKind.SALE, instance.sale_id)


def connect_receivers() -> None:
    for model in XERO_FIELDS:
        post_init.connect(remember_loaded_values, sender=model, dispatch_uid=f"xero-loaded-{model.__name__}")
        post_save.connect(record_change, sender=model, dispatch_uid=f"xero-record-{model.__name__}")
    post_delete.connect(record_line_removed, sender=SaleLine, dispatch_uid="xero-line-removed")


def disconnect_receivers() -> None:
    """Stop recording (benchmarks measure what recording costs against this)."""
    for model in XERO_FIELDS:
        post_init.disconnect(sender=model, dispatch_uid=f"xero-loaded-{model.__name__}")
        post_save.disconnect(sender=model, dispatch_uid=f"xero-record-{model.__name__}")
    post_delete.disconnect(sender=SaleLine, dispatch_uid="xero-line-removed")
