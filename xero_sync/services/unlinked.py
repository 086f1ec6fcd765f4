"""The website's records with no link in the current organisation, for the admin's Xero column.

On PostgreSQL the set is kept by triggers (UnlinkedRecord, migration 0013) for one organisation at a time.
The first time the admin asks for an organisation's set it is filled here, once, from an anti-join of
each record table against the links; from then on the triggers keep it in every writer's transaction.
Elsewhere (SQLite) there is no set and the admin keeps its anti-join.
"""

import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from ecommerce.models import Contact, Receipt, Refund, Sale

from ..models import RecordKind, UnlinkedRecord, UnlinkedTenant, XeroLink

log = logging.getLogger(__name__)

# The records the Xero column is shown on, by the kind their links carry.
XERO_MODELS = {RecordKind.CONTACT: Contact, RecordKind.SALE: Sale, RecordKind.RECEIPT: Receipt,
               RecordKind.REFUND: Refund}

# Filling locks the record tables and the links against writes while it fills (one anti-join per table,
# 0.2-0.6 s at 100,000 sales): a writer that comes meanwhile waits for it, once. Filling itself waits at
# most this long for the writers in flight; without its locks by then it gives up, the page reads the
# anti-join, and a later page tries again. Shorter than PostgreSQL's deadlock_timeout (1 s), so in a
# deadlock with a writer it is always filling that gives way: a push or a sale never fails for it.
FILL_LOCK_TIMEOUT = "200ms"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error when lock_timeout runs out


def unlinked_ids(kind: str, tenant_id) -> QuerySet | None:
    """The ids of the records of `kind` with no link in `tenant_id`, as a subquery; None where the set is not
    kept (not PostgreSQL, no organisation, or it could not be filled just now)."""
    if connection.vendor != "postgresql" or tenant_id is None:
        return None
    if not UnlinkedTenant.objects.filter(tenant_id=tenant_id).exists() and not _fill(tenant_id):
        return None
    return UnlinkedRecord.objects.filter(tenant_id=tenant_id, kind=kind).values_list("local_id", flat=True)


def _fill(tenant_id) -> bool:
    """Keep the set for `tenant_id` from now on, in place of any other organisation's: fill it from the tables
    while no one writes them (the lock), so that no record or link written meanwhile is missed."""
    tables = [UnlinkedTenant._meta.db_table, XeroLink._meta.db_table,
              *(model._meta.db_table for model in XERO_MODELS.values())]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{FILL_LOCK_TIMEOUT}'")
            cursor.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            if UnlinkedTenant.objects.filter(tenant_id=tenant_id).exists():
                return True  # filled by another request while this one waited
            UnlinkedRecord.objects.all().delete()
            UnlinkedTenant.objects.all().delete()
            UnlinkedTenant.objects.create(tenant_id=tenant_id)
            for kind, model in XERO_MODELS.items():
                cursor.execute(
                    f"INSERT INTO {UnlinkedRecord._meta.db_table} (tenant_id, kind, local_id) "
                    f"SELECT %s, %s, record.id FROM {model._meta.db_table} record WHERE NOT EXISTS ("
                    f"SELECT 1 FROM {XeroLink._meta.db_table} link WHERE link.tenant_id = %s AND link.kind = %s "
                    f"AND link.local_id = record.id)", [tenant_id, kind, tenant_id, kind])
            # Statistics at once, not at autovacuum's next pass: planned as an empty table, a set of 50,000
            # unlinked receipts was joined by nested loops (EXPLAIN: 270 ms against 60 ms once analysed).
            cursor.execute(f"ANALYZE {UnlinkedRecord._meta.db_table}")
        return True
    except DatabaseError as error:  # the anti-join serves this page; a later one tries again
        lock_not_had = getattr(error.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE
        log.log(logging.INFO if lock_not_had else logging.WARNING,
                "The unlinked records of %s are not filled yet (%s); the admin reads them by anti-join",
                tenant_id, error)
        return False
