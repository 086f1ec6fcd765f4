"""A contact's invoiced figures (lifetime invoiced, invoice count, last invoice date), kept on its row.

The contacts list sorts and filters on them, so they cannot be added up per request: at 100,000 invoices
the sum over every contact's invoices, repeated by the list's COUNT, took a minute (issue 17). Whatever
writes invoices (the pull from Xero is the only writer) calls contact_invoice_totals_refresh with the
contacts it touched, once per page, in one set-based statement per chunk of contacts.
"""

from collections.abc import Iterable

from django.db import connection

from .models import Contact, Invoice

# The invoices that count: what the accounts hold as invoiced. Drafts are not invoiced yet; voided and
# deleted invoices were taken back.
NOT_COUNTED_STATUSES = (Invoice.Status.DRAFT, Invoice.Status.VOIDED, Invoice.Status.DELETED)
# Contacts per statement: far below any database's limit of bound parameters (SQLite's 32,766).
CONTACTS_PER_STATEMENT = 1000


def contact_invoice_totals_refresh(contact_ids: Iterable[int | None]) -> int:
    """Recompute the figures of these contacts from their invoices; returns the rows changed.

    One UPDATE ... FROM (SELECT contact, sum, count, max ... GROUP BY) per chunk: a contact left with no
    counted invoice (its last one voided, or moved to another contact) gets 0, 0 and no date, because the
    grouped side starts from the contacts (a LEFT JOIN), not from their invoices. Rows whose figures are
    already right are not written, so a page of unchanged invoices costs no row versions."""
    ids = sorted({contact_id for contact_id in contact_ids if contact_id is not None})
    changed = 0
    for start in range(0, len(ids), CONTACTS_PER_STATEMENT):
        changed += _refresh_chunk(ids[start:start + CONTACTS_PER_STATEMENT])
    return changed


def contact_invoice_totals_refresh_all() -> int:
    """Every contact at once (the data migration, and a bench seeding in bulk): the same statement,
    without the list of ids."""
    return _refresh_chunk(None)


def _refresh_chunk(ids: list[int] | None) -> int:
    quote = connection.ops.quote_name
    contact, invoice = quote(Contact._meta.db_table), quote(Invoice._meta.db_table)
    not_counted = ", ".join(["%s"] * len(NOT_COUNTED_STATUSES))
    chosen = f"WHERE c.id IN ({', '.join(['%s'] * len(ids))})" if ids is not None else ""
    # Both PostgreSQL and SQLite (3.33+) take UPDATE ... FROM; ROUND keeps SQLite's float sums to the cent.
    sql = f"""
        UPDATE {contact} SET invoiced_total = figures.total, invoice_count = figures.counted,
                             last_invoice_date = figures.latest
        FROM (
            SELECT c.id AS contact_id, COALESCE(ROUND(SUM(i.total), 2), 0) AS total, COUNT(i.id) AS counted,
                   MAX(i.date) AS latest
            FROM {contact} c
            LEFT JOIN {invoice} i ON i.contact_id = c.id AND i.status NOT IN ({not_counted})
            {chosen}
            GROUP BY c.id
        ) AS figures
        WHERE {contact}.id = figures.contact_id
          AND ({contact}.invoiced_total <> figures.total OR {contact}.invoice_count <> figures.counted
               OR {contact}.last_invoice_date IS NULL AND figures.latest IS NOT NULL
               OR {contact}.last_invoice_date IS NOT NULL AND figures.latest IS NULL
               OR {contact}.last_invoice_date <> figures.latest)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*NOT_COUNTED_STATUSES, *(ids or [])])
        return cursor.rowcount
