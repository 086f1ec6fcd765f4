"""A shop of a given size for the admin's query-count tests: `n` of every record a staff page lists, written
in bulk as an importer (or a year of trade) leaves them, with their Xero links in every state.

The tests measure a page at 10 rows and again at 200 and expect the same number of queries: a page that
asks the database once per row (an N+1) grows with the rows; one that asks per page does not.
"""

import datetime
import io
import uuid
from decimal import Decimal as D

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ecommerce.invoice_totals import contact_invoice_totals_refresh_all
from ecommerce.models import (
    Contact,
    CreditAllocation,
    CreditNote,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentMethod,
    Receipt,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
)
from xero_sync.crypto import encrypt_token
from xero_sync.models import (
    OutboxEntry,
    OutboxHeld,
    PaymentMethodConfig,
    SyncEvent,
    SyncRun,
    XeroConnection,
    XeroLink,
)

TENANT = uuid.UUID("0c0ffee0-0017-4000-8000-000000000017")
# Every state a link can be in, and so every word the Xero column can show, over the rows.
STATES = ["synced", "synced", "error", "pending", "in_flight", "locked", "conflict", "dead", "deleted", None]


def connected() -> XeroConnection:
    """The shop connected to an organisation (no call is made: the pages only read what is stored)."""
    now = timezone.now()
    token = {"access_token": "a", "refresh_token": "r", "expires_at": (now + datetime.timedelta(minutes=30)).timestamp()}
    connection_row, _ = XeroConnection.objects.get_or_create(tenant_id=TENANT, defaults={
        "tenant_name": "Demo Company (NZ)", "is_current": True, "token_ciphertext": encrypt_token(token),
        "connected_at": now, "access_token_expires_at": now + datetime.timedelta(minutes=30)})
    return connection_row


def methods() -> dict[str, PaymentMethod]:
    card = PaymentMethod.objects.get_or_create(code="card", defaults={"name": "Card"})[0]
    cash = PaymentMethod.objects.get_or_create(code="cash", defaults={"name": "Cash"})[0]
    deposit = PaymentMethod.objects.get_or_create(code="deposit", defaults={"name": "Direct deposit"})[0]
    for method, direction, account in ((card, "push", "620"), (cash, "none", ""), (deposit, "pull", "090")):
        PaymentMethodConfig.objects.update_or_create(payment_method=method, defaults={
            "direction": direction, "xero_account_code": account})
    return {"card": card, "cash": cash, "deposit": deposit}


def grow_to(rows: int) -> None:
    """Add records until each list holds `rows` of them."""
    have = Sale.objects.count()
    if have >= rows:
        return
    connected()
    paid_by = methods()
    today = timezone.localdate()
    now = timezone.now()
    numbers = range(have + 1, rows + 1)
    contacts = Contact.objects.bulk_create(
        Contact(first_name="Aroha" if n % 2 else "Hemi", last_name=f"Smith {n}", email=f"c{n}@example.com",
                company_name="" if n % 3 else f"Company {n}", city="Nelson", country="NZ") for n in numbers)
    sales = Sale.objects.bulk_create(
        Sale(number=f"S-{n:06d}", contact=contact, date=today - datetime.timedelta(days=n % 40), currency="NZD",
             # drafts for the contacts left without a link below (by their id, not by n: ids run on from
             # earlier tests), so some contacts are "not for Xero yet" whatever ran before
             status="draft" if contact.pk % len(STATES) == STATES.index(None) else "confirmed")
        for n, contact in zip(numbers, contacts, strict=True))
    SaleLine.objects.bulk_create(
        SaleLine(sale=sale, position=line, description=f"Merino beanie {line}", quantity=D(line),
                 unit_amount=D("39.95"), tax_rate=D("15"), tax_code="GST")
        for sale in sales for line in range(1, 2 + sale.pk % 3))
    receipts = Receipt.objects.bulk_create(
        Receipt(sale=sale, payment_method=paid_by["card" if sale.pk % 2 else "cash"], amount=D("10.00"),
                date=sale.date, reference=f"ch_{sale.pk}") for sale in sales)
    invoices = Invoice.objects.bulk_create(
        Invoice(xero_id=uuid.uuid4(), number=sale.number, contact=sale.contact, sale=sale,
                status="VOIDED" if sale.pk % 7 == 0 else "AUTHORISED", date=sale.date, currency="NZD",
                line_amount_type="inclusive", subtotal=D("69.48"), total_tax=D("10.42"), total=D("79.90"),
                amount_due=D("69.90"), amount_paid=D("10.00"), updated_in_xero_at=now) for sale in sales)
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, position=1, description="Merino beanie", quantity=D("2"),
                    unit_amount=D("39.95"), account_code="200", tax_type="OUTPUT2", tax_amount=D("10.42"),
                    line_amount=D("79.90")) for invoice in invoices)
    Payment.objects.bulk_create(
        Payment(xero_id=uuid.uuid4(), invoice=invoice, sale=invoice.sale, payment_method=paid_by["deposit"],
                amount=D("5.00"), currency="NZD", date=invoice.date, reference=f"dd {invoice.pk}",
                updated_in_xero_at=now) for invoice in invoices)
    refunds = Refund.objects.bulk_create(
        Refund(number=f"CN-{sale.pk:06d}", sale=sale, payment_method=paid_by["card"], date=sale.date,
               line_amount_type="inclusive", credit_subtotal=D("4.35"), credit_tax=D("0.65"), credit_total=D("5.00"),
               amount_refunded=D("5.00"), amount_allocated=D("0")) for sale in sales)
    RefundLine.objects.bulk_create(
        RefundLine(refund=refund, position=1, description="Merino beanie", quantity=D("1"), unit_amount=D("5.00"),
                   tax_rate=D("15"), tax_code="GST") for refund in refunds)
    notes = CreditNote.objects.bulk_create(
        CreditNote(xero_id=uuid.uuid4(), number=refund.number, contact=refund.sale.contact, refund=refund,
                   status="PAID", date=refund.date, currency="NZD", line_amount_type="inclusive",
                   subtotal=D("4.35"), total_tax=D("0.65"), total=D("5.00"), remaining_credit=D("0"),
                   updated_in_xero_at=now) for refund in refunds)
    CreditAllocation.objects.bulk_create(
        CreditAllocation(credit_note=note, invoice=invoice, sale=invoice.sale, amount=D("1.00"), date=invoice.date)
        for note, invoice in zip(notes, invoices, strict=True))
    links = []
    for kind, records in (("contact", contacts), ("sale", sales), ("receipt", receipts), ("refund", refunds)):
        for record in records:
            state = STATES[record.pk % len(STATES)]
            if state is not None:
                links.append(XeroLink(tenant_id=TENANT, kind=kind, local_id=record.pk, xero_id=uuid.uuid4(),
                                      xero_key=str(record.pk), state=state, xero_status="AUTHORISED",
                                      last_error="Account code '999' is not valid" if state == "error" else "",
                                      last_pushed_at=now))
    links = XeroLink.objects.bulk_create(links)
    SyncEvent.objects.bulk_create(SyncEvent(link=link, action="pushed", detail="batch of 50") for link in links)
    # Changes waiting to be pushed: sales whose link is synced (they show as pending) and some without a link.
    OutboxEntry.objects.bulk_create(OutboxEntry(kind="sale", local_id=sale.pk, recorded_at=now) for sale in sales
                                    if sale.pk % len(STATES) in (1, 9))
    OutboxHeld.objects.bulk_create(OutboxHeld(tenant_id=uuid.uuid4(), kind="sale", local_id=sale.pk, held_at=now)
                                   for sale in sales)
    SyncRun.objects.bulk_create(
        SyncRun(tenant_id=TENANT, trigger="auto", status="done", started_at=now - datetime.timedelta(hours=n),
                finished_at=now - datetime.timedelta(hours=n) + datetime.timedelta(seconds=7),
                pushed={"contact": 1, "sale": 2}, pulled={"invoice": 3}, failed={"sale": 1} if n % 5 == 0 else {},
                calls=4) for n in numbers)
    contact_invoice_totals_refresh_all()


def queries_of(client, url: str, *, rows_expected: int | None = None) -> int:
    """The queries one request for `url` makes (after a first request has warmed the session)."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    listing = response.context.get("cl") if response.context else None
    if listing is not None:
        # an empty page would prove nothing about the queries per row
        assert listing.result_count > 0, f"{url} lists nothing"
    if rows_expected is not None:
        assert listing.result_count == rows_expected, url
    return len(captured)


def queries_of_command(*args) -> int:
    from django.core.management import call_command

    call_command(*args, stdout=io.StringIO())  # warm: the settings row is made on first read
    with CaptureQueriesContext(connection) as captured:
        call_command(*args, stdout=io.StringIO())
    return len(captured)
