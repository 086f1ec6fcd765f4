"""Every staff page at a year of a busy shop: p50/p95 over 20 requests and the query count per page, at
--sales (default 100,000) beside the same pages at a tenth of that, so growth shows as a ratio.

    createdb -h 127.0.0.1 -U postgres scale
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale python bench/admin_scale.py --sales 100000

The volume is issue 17's: per 100,000 sales (1-10 lines each) 50,000 contacts, 100,000 pulled invoices,
150,000 receipts, 150,000 Xero payments, 300,000 Xero links (a contact, sale and receipt each) and
1,000,000 sync events, plus a year of sync runs, 2,000 refunds with their credit notes and an outbox
backlog. It is seeded with INSERT ... SELECT generate_series (PostgreSQL only: the figures are
PostgreSQL's), first at the small size, measured, then topped up to the large size and measured again.
The database is left in place. It must be empty (migrated or not) unless --reuse, which measures
whatever it holds at the large size.

Pages are requested with Django's test client as a logged-in superuser, after one warm-up request each.
"""

import argparse
import datetime
import io
import os
import statistics
import sys
import time
import tracemalloc
import uuid

from common import REPO, machine, report

sys.path.insert(0, str(REPO))

TENANT = uuid.UUID("8a0c6e0c-1b7e-4f49-9d55-17c0ffee0017")
REQUESTS = 20


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("XERO_SYNC_NUDGE", "false")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("admin_scale.py measures PostgreSQL: set DATABASE_URL to a scratch PostgreSQL database.")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def holds_data() -> bool:
    from ecommerce.models import Contact, Sale
    from xero_sync.models import SyncRun, XeroLink

    return any(model.objects.exists() for model in (Contact, Sale, XeroLink, SyncRun))


# --- Seeding ----------------------------------------------------------------------------------------------

def seed(sales: int) -> None:
    """Top the database up to `sales` sales and the matching volume of everything else (idempotent in
    size: ids continue from what is there)."""
    from django.db import connection

    from ecommerce.invoice_totals import contact_invoice_totals_refresh_all

    have = _count("ecommerce_sale")
    if have >= sales:
        return
    started = time.perf_counter()
    base = _basics()
    contacts_from, contacts_to = _count("ecommerce_contact"), sales // 2
    sales_from = have
    with connection.cursor() as cursor:
        def run(sql: str, *params) -> None:
            cursor.execute(sql, params)  # always with params: every literal % is written %%

        # Contacts: names from small lists, so a search for "Smith" finds about one in twenty.
        run("""
            INSERT INTO ecommerce_contact (first_name, last_name, company_name, email, phone, address_line1,
                address_line2, city, region, postcode, country, created_at, updated_at, invoice_count,
                invoiced_total, last_invoice_date)
            SELECT (ARRAY['Aroha','Liam','Mere','Hemi','Olivia','Noah','Ava','Jack','Isla','Leo'])[1 + n %% 10],
                   (ARRAY['Smith','Walker','Parata','Tane','Chen','Singh','Brown','Wilson','Taylor','Nguyen',
                          'Jones','Williams','Patel','Kim','Lee','Martin','White','Harris','Clark','Young'])[1 + n %% 20],
                   CASE WHEN n %% 7 = 0 THEN 'Company ' || n ELSE '' END,
                   'c' || n || '@example.com', '+64 21 ' || (100000 + n), n || ' Queen Street', '',
                   (ARRAY['Auckland','Wellington','Christchurch','Dunedin'])[1 + n %% 4], '', '1010', 'NZ',
                   now() - (n %% 365) * interval '1 day', now(), 0, 0, NULL
            FROM generate_series(%s + 1, %s) AS n""", contacts_from, contacts_to)
        first_contact = _min_id("ecommerce_contact")
        contact_count = contacts_to
        # Sales: one a few minutes apart over a year; 95% confirmed, 3% drafts, 2% cancelled.
        run("""
            INSERT INTO ecommerce_sale (number, date, due_date, currency, line_amount_type, status, reference, notes,
                created_at, updated_at, contact_id)
            SELECT 'S-' || lpad(n::text, 6, '0'), current_date - (n %% 365), NULL, 'NZD', 'inclusive',
                   CASE WHEN n %% 100 < 3 THEN 'draft' WHEN n %% 100 < 5 THEN 'cancelled' ELSE 'confirmed' END,
                   'web ' || n, '', now() - (n %% 365) * interval '1 day', now(), %s + (n * 7919) %% %s
            FROM generate_series(%s + 1, %s) AS n""", first_contact, contact_count, sales_from, sales)
        run("UPDATE ecommerce_numbersequence SET last_value = %s WHERE name = 'sale'", sales)
        sale_ids = f"(SELECT id, number FROM ecommerce_sale WHERE number > 'S-{sales_from:06d}')"
        # Lines: 1 to 10 per sale.
        run(f"""
            INSERT INTO ecommerce_saleline (position, kind, description, quantity, unit_amount, discount_rate,
                tax_rate, tax_code, account_code, item_code, sale_id)
            SELECT line, 'item', 'Merino beanie ' || line, 1 + line %% 3, 19.95 + line, 0, 15, 'GST', '', '', s.id
            FROM {sale_ids} s, generate_series(1, 1 + s.id::int %% 10) AS line""")
        # Receipts: 150 per 100 sales (every sale one, every second one a second), card or cash.
        run(f"""
            INSERT INTO ecommerce_receipt (amount, date, reference, overpayment_allowed, created_at, updated_at,
                payment_method_id, sale_id, removed_in_books_at)
            SELECT 20.00 + s.id %% 50, current_date - (s.id::int %% 365), 'ch_' || s.id || '_' || k, false, now(), now(),
                   CASE WHEN s.id %% 3 = 0 THEN %s ELSE %s END, s.id, NULL
            FROM {sale_ids} s, generate_series(1, 1 + s.id::int %% 2) AS k""", base["cash"], base["card"])
        # Pulled invoices: one per sale, as Xero holds them.
        run(f"""
            INSERT INTO ecommerce_invoice (xero_id, number, status, date, due_date, currency, line_amount_type,
                subtotal, total_tax, total, amount_due, amount_paid, reference, updated_in_xero_at, contact_id,
                sale_id, amount_credited)
            SELECT gen_random_uuid(), s.number,
                   CASE WHEN s.id %% 50 = 0 THEN 'VOIDED' WHEN s.id %% 2 = 0 THEN 'PAID' ELSE 'AUTHORISED' END,
                   sale.date, sale.date + 20, 'NZD', 'Inclusive', 87.00, 13.05, 100.05 + s.id %% 900,
                   CASE WHEN s.id %% 2 = 0 THEN 0 ELSE 100.05 END, 0, '', now() - (s.id %% 365) * interval '1 day',
                   sale.contact_id, s.id, 0
            FROM {sale_ids} s JOIN ecommerce_sale sale ON sale.id = s.id""")
        invoice_ids = f"(SELECT id, contact_id, sale_id FROM ecommerce_invoice WHERE number > 'S-{sales_from:06d}')"
        run(f"""
            INSERT INTO ecommerce_invoiceline (position, description, quantity, unit_amount, discount_rate, account_code,
                tax_type, item_code, tax_amount, line_amount, invoice_id)
            SELECT 1, 'Merino beanie', 1, 100.05, 0, '200', 'OUTPUT2', '', 13.05, 100.05, i.id FROM {invoice_ids} i""")
        # Xero payments: 150 per 100 invoices, into the direct-deposit account.
        run(f"""
            INSERT INTO ecommerce_payment (xero_id, amount, currency, date, reference, status, updated_in_xero_at,
                invoice_id, payment_method_id, sale_id, credit_note_id)
            SELECT gen_random_uuid(), 10.00, 'NZD', current_date - (i.id::int %% 365), 'dd ' || i.id || '/' || k, 'active',
                   now(), i.id, %s, i.sale_id, NULL
            FROM {invoice_ids} i, generate_series(1, 1 + i.id::int %% 2) AS k""", base["deposit"])
        # Refunds (2 per 100 sales) and their pulled credit notes.
        run(f"""
            INSERT INTO ecommerce_refund (number, date, reason, line_amount_type, credit_subtotal, credit_tax,
                credit_total, amount_refunded, amount_allocated, cancels_sale, removed_in_books_at, created_at,
                updated_at, payment_method_id, sale_id)
            SELECT 'CN-' || lpad(s.id::text, 6, '0'), current_date - (s.id::int %% 365), 'Returned', 'inclusive',
                   17.35, 2.60, 19.95, 19.95, 0, false, NULL, now(), now(), %s, s.id
            FROM {sale_ids} s WHERE s.id %% 50 = 7""", base["card"])
        run("""
            INSERT INTO ecommerce_creditnote (xero_id, number, status, date, currency, line_amount_type, subtotal,
                total_tax, total, remaining_credit, reference, updated_in_xero_at, contact_id, refund_id)
            SELECT gen_random_uuid(), r.number, 'PAID', r.date, 'NZD', 'Inclusive', 17.35, 2.60, 19.95, 0, '', now(),
                   s.contact_id, r.id
            FROM ecommerce_refund r JOIN ecommerce_sale s ON s.id = r.sale_id
            WHERE NOT EXISTS (SELECT 1 FROM ecommerce_creditnote c WHERE c.refund_id = r.id)""")
        run("""UPDATE ecommerce_numbersequence SET last_value = (SELECT count(*) FROM ecommerce_refund)
               WHERE name = 'refund'""")
        # Xero links: a contact, a sale and a receipt each; 1% refused, 0.2% given up on, 0.5% pending.
        state = """CASE WHEN x.id %% 100 = 3 THEN 'error' WHEN x.id %% 500 = 11 THEN 'dead'
                        WHEN x.id %% 200 = 5 THEN 'pending' ELSE 'synced' END"""
        error = "CASE WHEN x.id %% 100 = 3 THEN 'A validation exception occurred: Account code ''999'' is not valid' ELSE '' END"
        error_by = "CASE WHEN x.id %% 100 = 3 THEN 'xero' ELSE '' END"  # Xero's words, as the push records them
        for kind, source, key in (
                ("contact", f"SELECT id FROM ecommerce_contact WHERE id > {first_contact + contacts_from - 1}",
                 "'SHOP-' || x.id"),
                ("sale", f"SELECT id FROM ecommerce_sale WHERE number > 'S-{sales_from:06d}' AND status <> 'draft'",
                 "'S-' || x.id"),
                ("receipt", f"SELECT r.id FROM ecommerce_receipt r JOIN ecommerce_sale s ON s.id = r.sale_id "
                            f"WHERE s.number > 'S-{sales_from:06d}'", "'R' || x.id")):
            run(f"""
                INSERT INTO xero_sync_xerolink (tenant_id, kind, local_id, xero_id, xero_key, xero_name, xero_status,
                    payload_hash, sent_hash, state, last_error, error_by, attempts, in_flight_since, xero_updated_at,
                    last_pushed_at, last_pulled_at)
                SELECT %s, %s, x.id, gen_random_uuid(), {key}, '', 'AUTHORISED', md5(x.id::text), md5(x.id::text),
                       {state}, {error}, {error_by}, 1, NULL, now(), now() - (x.id %% 365) * interval '1 day', now()
                FROM ({source}) x""", TENANT, kind)
        # Sync events: 1,000,000 per 100,000 sales, spread over the links and the year.
        events = sales * 10 - _count("xero_sync_syncevent")
        run("""
            INSERT INTO xero_sync_syncevent (at, action, detail, link_id)
            SELECT now() - (n %% 525600) * interval '1 minute', (ARRAY['pushed','pulled','refused'])[1 + n %% 3],
                   'batch of 50', l.id
            FROM generate_series(1, %s) AS n
            JOIN xero_sync_xerolink l ON l.id = (SELECT min(id) FROM xero_sync_xerolink) + n %% %s""",
            events, _count("xero_sync_xerolink"))
        # A year of sync runs (one every 10 minutes), each with its counts.
        runs_from, runs_to = _count("xero_sync_syncrun"), 52_560 * sales // 100_000
        run("""
            INSERT INTO xero_sync_syncrun (tenant_id, trigger, status, started_at, finished_at, pushed, pulled, failed,
                calls, errors, work_remains)
            SELECT %s, 'auto', CASE WHEN n %% 97 = 0 THEN 'failed' ELSE 'done' END,
                   now() - n * interval '10 minutes', now() - n * interval '10 minutes' + interval '7 seconds',
                   jsonb_build_object('contact', n %% 5, 'sale', n %% 7, 'receipt', n %% 4),
                   jsonb_build_object('invoice', n %% 9), CASE WHEN n %% 31 = 0 THEN '{"sale": 1}'::jsonb ELSE '{}' END,
                   3 + n %% 5, '[]', false
            FROM generate_series(%s + 1, %s) AS n""", TENANT, runs_from, runs_to)
        # A backlog waiting for the next push.
        run("""
            INSERT INTO xero_sync_outboxentry (kind, local_id, recorded_at, not_before)
            SELECT 'sale', id, now(), NULL FROM ecommerce_sale ORDER BY id DESC LIMIT 500""")
    contact_invoice_totals_refresh_all()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a live database: statistics, visibility map
    print(f"  seeded {sales:,} sales in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _basics() -> dict:
    """The shop's configuration (once): payment methods, the Xero connection, a superuser."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from ecommerce.models import NumberSequence, PaymentMethod
    from xero_sync.crypto import encrypt_token
    from xero_sync.models import PaymentMethodConfig, SyncSettings, TaxMapping, XeroConnection

    card = PaymentMethod.objects.get_or_create(code="card", defaults={"name": "Card"})[0]
    cash = PaymentMethod.objects.get_or_create(code="cash", defaults={"name": "Cash"})[0]
    deposit = PaymentMethod.objects.get_or_create(code="deposit", defaults={"name": "Direct deposit"})[0]
    for method, direction, account in ((card, "push", "620"), (cash, "none", ""), (deposit, "pull", "090")):
        PaymentMethodConfig.objects.update_or_create(payment_method=method, defaults={
            "direction": direction, "xero_account_code": account})
    SyncSettings.objects.get_or_create(pk=1, defaults={"default_sales_account_code": "200"})
    TaxMapping.objects.get_or_create(tax_code="GST", defaults={"xero_tax_type": "OUTPUT2"})
    for name in ("sale", "refund"):
        NumberSequence.objects.get_or_create(name=name)
    expires = timezone.now() + datetime.timedelta(days=3650)  # pages only read it; nothing calls Xero here
    XeroConnection.objects.update_or_create(tenant_id=TENANT, defaults={
        "tenant_name": "Demo Company (NZ)", "is_current": True, "connected_at": timezone.now(),
        "token_ciphertext": encrypt_token({"access_token": "bench", "refresh_token": "bench",
                                           "expires_at": expires.timestamp()}),
        "access_token_expires_at": expires})
    user_model = get_user_model()
    if not user_model.objects.filter(username="bench").exists():
        user_model.objects.create_superuser("bench", "bench@example.com", "bench")
    return {"card": card.pk, "cash": cash.pk, "deposit": deposit.pk}


def _count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def _min_id(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(min(id), 1) FROM {table}")
        return cursor.fetchone()[0]


# --- Measuring --------------------------------------------------------------------------------------------

def pages() -> list[tuple[str, str]]:
    """(label, URL) of every staff page: each changelist plainly, sorted, filtered and searched, each change
    form, the settings page. Records for the change forms are the newest (the list's first page)."""
    from django.urls import NoReverseMatch, reverse

    from ecommerce.models import Contact, CreditNote, Invoice, Payment, Receipt, Refund, Sale
    from xero_sync.models import OutboxEntry, SyncRun, XeroLink

    contact = Contact.objects.filter(invoice_count__gt=0).order_by("-id").first() or Contact.objects.last()
    sale = Sale.objects.filter(status="confirmed").order_by("-id").first()
    found = []

    def add(label: str, name: str, *args, query: str = "") -> None:
        try:
            found.append((label, reverse(name, args=args) + query))
        except NoReverseMatch:
            pass  # a page this version of the code does not have

    add("contacts", "admin:ecommerce_contact_changelist")
    add("contacts ?q=Smith", "admin:ecommerce_contact_changelist", query="?q=Smith")
    add("contacts ?q=email", "admin:ecommerce_contact_changelist", query="?q=c4242%40example.com")
    add("contacts by lifetime invoiced", "admin:ecommerce_contact_changelist", query="?o=-5")
    add("contacts by invoice count", "admin:ecommerce_contact_changelist", query="?o=-6")
    add("contacts by last invoice", "admin:ecommerce_contact_changelist", query="?o=-7")
    add("contacts by Xero state", "admin:ecommerce_contact_changelist", query="?o=8")
    add("contacts 500 and more", "admin:ecommerce_contact_changelist", query="?lifetime=500-plus")
    add("contacts invoiced in 30 days", "admin:ecommerce_contact_changelist", query="?last_invoice=30")
    add("contacts Xero error", "admin:ecommerce_contact_changelist", query="?xero=error")
    add("contacts Xero synced", "admin:ecommerce_contact_changelist", query="?xero=synced")
    add("contacts not for Xero", "admin:ecommerce_contact_changelist", query="?xero=not_eligible")
    add("contact page", "admin:ecommerce_contact_change", contact.pk)
    add("sales", "admin:ecommerce_sale_changelist")
    add("sales ?q=number", "admin:ecommerce_sale_changelist", query=f"?q={sale.number}")
    add("sales ?q=Smith", "admin:ecommerce_sale_changelist", query="?q=Smith")
    add("sales by Xero state", "admin:ecommerce_sale_changelist", query="?o=8")
    add("sales Xero error", "admin:ecommerce_sale_changelist", query="?xero=error")
    add("sales Xero pending", "admin:ecommerce_sale_changelist", query="?xero=pending")
    add("sales drafts", "admin:ecommerce_sale_changelist", query="?status__exact=draft")
    add("sale page", "admin:ecommerce_sale_change", sale.pk)
    add("receipts", "admin:ecommerce_receipt_changelist")
    add("receipts ?q=number", "admin:ecommerce_receipt_changelist", query=f"?q={sale.number}")
    add("receipts Xero error", "admin:ecommerce_receipt_changelist", query="?xero=error")
    add("receipt page", "admin:ecommerce_receipt_change", Receipt.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("refunds", "admin:ecommerce_refund_changelist")
    add("refunds ?q=number", "admin:ecommerce_refund_changelist", query="?q=CN-0000")
    if Refund.objects.exists():
        add("refund page", "admin:ecommerce_refund_change", Refund.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("credit notes", "admin:ecommerce_creditnote_changelist")
    if CreditNote.objects.exists():
        add("credit note page", "admin:ecommerce_creditnote_change",
            CreditNote.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("invoices", "admin:ecommerce_invoice_changelist")
    add("invoices ?q=Smith", "admin:ecommerce_invoice_changelist", query="?q=Smith")
    add("invoice page", "admin:ecommerce_invoice_change", Invoice.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("payments", "admin:ecommerce_payment_changelist")
    add("payment page", "admin:ecommerce_payment_change", Payment.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("Xero links", "admin:xero_sync_xerolink_changelist")
    add("Xero links in error", "admin:xero_sync_xerolink_changelist", query="?state__exact=error")
    add("Xero links ?q=key", "admin:xero_sync_xerolink_changelist", query="?q=S-4242")
    add("Xero link page", "admin:xero_sync_xerolink_change",
        XeroLink.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("sync runs", "admin:xero_sync_syncrun_changelist")
    add("sync run page", "admin:xero_sync_syncrun_change", SyncRun.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("outbox", "admin:xero_sync_outboxentry_changelist")
    if OutboxEntry.objects.exists():
        add("outbox entry page", "admin:xero_sync_outboxentry_change",
            OutboxEntry.objects.order_by("-id").values_list("pk", flat=True)[0])
    add("held for other organisations", "admin:xero_sync_outboxheld_changelist")
    add("Xero settings and dashboard", "xero_sync:settings")
    return found


def measure(requests: int) -> dict[str, dict]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False)  # a page that fails is reported with its status, not fatal
    client.login(username="bench", password="bench")
    results = {}
    for label, url in pages():
        timings, status = [], None
        client.get(url)  # warm: templates, the session, content types
        for _ in range(requests):
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        results[label] = {"url": url, "status": status, "queries": len(captured),
                          **_percentiles(timings)}
        print(f"  {label:<34} {results[label]['p50']:>8.1f} ms  {len(captured):>3} queries  ({status})",
              file=sys.stderr)
    results["xero_sync status"] = _status_command(requests)
    results["CSV export of every contact"] = _export()
    return results


def _percentiles(timings: list[float]) -> dict:
    ordered = sorted(timings)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1)}


def _status_command(requests: int) -> dict:
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    call_command("xero_sync", "status", stdout=io.StringIO())
    for _ in range(requests):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            call_command("xero_sync", "status", stdout=io.StringIO())
            timings.append((time.perf_counter() - started) * 1000)
    print(f"  {'xero_sync status':<34} {statistics.median(timings):>8.1f} ms  {len(captured):>3} queries",
          file=sys.stderr)
    return {"url": "manage.py xero_sync status", "status": 0, "queries": len(captured), **_percentiles(timings)}


def _export() -> dict:
    """Export every contact (select across), reading the stream as a browser would; peak Python memory
    (tracemalloc) while it streams, and the time to the last byte."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from ecommerce.models import Contact

    client = Client()
    client.login(username="bench", password="bench")
    url = reverse("admin:ecommerce_contact_changelist")
    pk = Contact.objects.values_list("pk", flat=True).first()
    tracemalloc.start()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.post(url, {"action": "export_csv", "_selected_action": [pk], "select_across": "1",
                                     "index": "0"})
        rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
        elapsed = (time.perf_counter() - started) * 1000
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {'CSV export':<34} {elapsed:>8.1f} ms  {rows:,} rows, peak {peak / 2**20:.1f} MB", file=sys.stderr)
    return {"url": url + " (export_csv, all)", "status": response.status_code, "queries": len(captured),
            "p50": round(elapsed, 1), "p95": round(elapsed, 1), "rows": rows, "peak_mb": round(peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=None, help="the size to compare with (default: a tenth)")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--reuse", action="store_true", help="measure the data the database holds")
    args = parser.parse_args()
    setup()
    small = args.small or args.sales // 10
    measured = {}
    if args.reuse:
        seed(args.sales)
    else:
        if holds_data():
            sys.exit("The database holds data: give admin_scale.py an empty scratch database, or --reuse it.")
        print(f"seeding {small:,} sales", file=sys.stderr)
        seed(small)
        measured["small"] = measure(args.requests)
        print(f"seeding {args.sales:,} sales", file=sys.stderr)
        seed(args.sales)
    measured["large"] = measure(args.requests)
    large, small_figures = measured["large"], measured.get("small", {})
    rows = [("page", f"p50 ms at {args.sales:,}", "p95 ms", "queries", f"p50 ms at {small:,}", "queries",
             "p50 ratio")]
    for label, figures in large.items():
        before = small_figures.get(label)
        rows.append((label, figures["p50"], figures["p95"], figures["queries"],
                     before["p50"] if before else "-", before["queries"] if before else "-",
                     round(figures["p50"] / before["p50"], 2) if before and before["p50"] else "-"))
    report(f"Staff pages at {args.sales:,} sales vs {small:,} (PostgreSQL, {args.requests} requests each)", rows,
           {"sales": args.sales, "small": small, "requests": args.requests, "machine": machine(), **measured})


if __name__ == "__main__":
    main()
