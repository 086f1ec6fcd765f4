"""The shop's records. Staff edit these in the admin; the Xero sync (a separate app) reads them.

Fields carry their own validation (validators, constraints). Rules that read other records (status
changes, a confirmed sale's lines, what a receipt may pay) live once in services.py, which every write
goes through; these models import neither services nor selectors.

Invoice, InvoiceLine, CreditNote, CreditAllocation and Payment are the accounting side: copies of what
Xero holds, written only by the pull from Xero, read-only for staff.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from . import totals
from .currencies import CURRENCY_CODES
from .querysets import DatesAlongTheIndexQuerySet

ZERO = Decimal("0")
HALF_CENT = Decimal("0.005")


def validate_currency(value: str) -> None:
    if value not in CURRENCY_CODES:
        raise ValidationError(
            "%(value)s is not a currency Xero knows; use a three-letter ISO code such as NZD or AUD.",
            params={"value": value},
            code="unknown_currency",
        )


def default_currency() -> str:
    return settings.SHOP_CURRENCY


class CurrencyCodeField(models.CharField):
    """An ISO 4217 code, stored upper-case whatever case it was typed in."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return value.upper() if value else value


class Contact(models.Model):
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    company_name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=50, blank=True)
    address_line1 = models.CharField("address line 1", max_length=500, blank=True)
    address_line2 = models.CharField("address line 2", max_length=500, blank=True)
    city = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=255, blank=True)
    postcode = models.CharField(max_length=50, blank=True)
    country = models.CharField(max_length=50, blank=True)
    # What the accounts say this contact was invoiced (the pulled invoices that count: not drafts, voided or
    # deleted), kept on the row by whatever writes invoices, so the contacts list can sort and filter on it
    # without adding up every invoice of every contact for each page.
    invoiced_total = models.DecimalField("lifetime invoiced", max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                         editable=False)
    invoice_count = models.PositiveIntegerField("invoices", default=0, editable=False)
    last_invoice_date = models.DateField("last invoice", null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "company_name", "id"]
        # EXPLAIN ANALYZE at 50,000 contacts (bench/admin_scale.py): without these the contacts list read
        # and sorted the whole table for each page (Seq Scan + top-N heapsort, ~40 ms, growing with it);
        # with them each sort the list offers is an Index Scan (Backward, for "-") stopped by the LIMIT,
        # and the invoiced filters are Index Cond ranges.
        indexes = [
            models.Index(fields=["last_name", "first_name", "company_name", "id"], name="contact_by_name"),
            models.Index(fields=["invoiced_total", "id"], name="contact_by_invoiced"),
            models.Index(fields=["invoice_count", "id"], name="contact_by_invoice_count"),
            models.Index(fields=["last_invoice_date", "id"], name="contact_by_last_invoice"),
            # The country filter's choices: a loose index scan (ecommerce.admin.distinct_values), one probe
            # per country, where SELECT DISTINCT read all 50,000 contacts (~25 ms).
            models.Index(fields=["country"], name="contact_country"),
        ]
        constraints = [
            models.CheckConstraint(
                name="contact_has_a_name",
                condition=~Q(first_name="", last_name="", company_name=""),
                violation_error_message="Give the contact a first name, a last name or a company name.",
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def display_name(self) -> str:
        return self.company_name or self.full_name


class PaymentMethod(models.Model):
    name = models.CharField(max_length=100)
    code = models.SlugField(max_length=50, unique=True, help_text="A short fixed key, e.g. card or cash.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NumberSequence(models.Model):
    """A gapless counter per document kind; its row lock serialises concurrent number allocation."""

    name = models.CharField(max_length=50, primary_key=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_value}"


class LineAmountType(models.TextChoices):
    EXCLUSIVE = totals.EXCLUSIVE, "Tax exclusive"
    INCLUSIVE = totals.INCLUSIVE, "Tax inclusive"
    NO_TAX = totals.NO_TAX, "No tax"


class Sale(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"

    # Which status may follow which; a confirmed sale is already in the books, so it cannot become a draft.
    ALLOWED_TRANSITIONS = {
        Status.DRAFT: {Status.DRAFT, Status.CONFIRMED, Status.CANCELLED},
        Status.CONFIRMED: {Status.CONFIRMED, Status.CANCELLED},
        Status.CANCELLED: {Status.CANCELLED},
    }

    # Allocated by services.sale_create, the one place a sale is made (the pull from Xero never makes one).
    number = models.CharField(max_length=20, unique=True, editable=False, help_text="Generated, e.g. S-000042.")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="sales")
    date = models.DateField(default=timezone.localdate)
    due_date = models.DateField(null=True, blank=True)
    currency = CurrencyCodeField(default=default_currency, validators=[validate_currency])
    line_amount_type = models.CharField(
        max_length=10, choices=LineAmountType.choices, default=LineAmountType.INCLUSIVE
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    reference = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatesAlongTheIndexQuerySet.as_manager()  # the admin's date drill-down along sale_newest_first

    class Meta:
        ordering = ["-date", "-id"]
        # EXPLAIN ANALYZE at 100,000 sales: the list's ORDER BY date DESC, id DESC LIMIT 100 was a Seq Scan
        # and a top-N heapsort of every sale (~40 ms, growing with the table); with the index, an Index
        # Scan that stops after the page, and MIN/MAX(date) for the date drill-down are two index probes.
        indexes = [models.Index(fields=["-date", "-id"], name="sale_newest_first"),
                   # the currency filter's choices, by a loose index scan (see Contact's country)
                   models.Index(fields=["currency"], name="sale_currency")]
        constraints = [
            models.CheckConstraint(
                name="sale_due_not_before_date",
                condition=Q(due_date__isnull=True) | Q(due_date__gte=F("date")),
                violation_error_message="The due date cannot be before the sale date.",
            ),
            # A sale saved without going through sale_create fails here, not as a second "" number later.
            models.CheckConstraint(name="sale_has_a_number", condition=~Q(number="")),
        ]

    def __str__(self) -> str:
        return self.number or "New sale"


class SaleLine(models.Model):
    class Kind(models.TextChoices):
        ITEM = "item", "Item"
        SHIPPING = "shipping", "Shipping"

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ITEM)
    description = models.CharField(max_length=4000)
    quantity = models.DecimalField(
        max_digits=14, decimal_places=4, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.0001"), "Quantity must be more than zero.")],
    )
    unit_amount = models.DecimalField(
        "unit price", max_digits=14, decimal_places=4,
        validators=[MinValueValidator(ZERO, "The unit price cannot be negative.")],
    )
    discount_rate = models.DecimalField(
        "discount %", max_digits=5, decimal_places=2, default=ZERO,
        validators=[
            MinValueValidator(ZERO, "A discount cannot be negative."),
            MaxValueValidator(Decimal(100), "A discount cannot be more than 100%%."),
        ],
    )
    tax_rate = models.DecimalField(
        "tax %", max_digits=6, decimal_places=3, default=ZERO,
        validators=[
            MinValueValidator(ZERO, "A tax rate cannot be negative."),
            MaxValueValidator(Decimal(100), "A tax rate cannot be more than 100%%."),
        ],
    )
    tax_code = models.CharField(max_length=50, blank=True, help_text="The shop's tax code, e.g. GST or ZERO.")
    account_code = models.CharField(max_length=50, blank=True, help_text="Overrides the default sales account.")
    item_code = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["sale", "position", "id"]
        # The settings page lists the tax codes in use: SELECT DISTINCT over 550,000 lines was ~200 ms
        # (HashAggregate over a Seq Scan); with this index it walks the few distinct codes (a loose index
        # scan, xero_sync.views._tax_codes: one Index Only Scan probe per code, < 1 ms).
        indexes = [models.Index(fields=["tax_code"], name="sale_line_tax_code")]
        constraints = [
            models.CheckConstraint(name="sale_line_quantity_positive", condition=Q(quantity__gt=0)),
            models.CheckConstraint(name="sale_line_unit_amount_not_negative", condition=Q(unit_amount__gte=0)),
            models.CheckConstraint(
                name="sale_line_discount_0_to_100", condition=Q(discount_rate__gte=0, discount_rate__lte=100)
            ),
            models.CheckConstraint(name="sale_line_tax_0_to_100", condition=Q(tax_rate__gte=0, tax_rate__lte=100)),
        ]

    def __str__(self) -> str:
        return self.description


class Receipt(models.Model):
    """Money taken on the website (card checkout, cash at the counter) against a confirmed sale."""

    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="receipts")
    payment_method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="receipts")
    amount = models.DecimalField(
        max_digits=14, decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"), "The amount must be more than zero.")],
    )
    date = models.DateField(default=timezone.localdate)
    reference = models.CharField(max_length=255, blank=True)
    overpayment_allowed = models.BooleanField(
        default=False, help_text="Tick to accept more than the amount still due on the sale."
    )
    # Set when the accounts (Xero) deleted the payment this receipt became: the books no longer hold the money,
    # so the sale's paid state stops counting it until staff send it again (which clears this).
    removed_in_books_at = models.DateTimeField("deleted in the accounts", null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatesAlongTheIndexQuerySet.as_manager()  # the admin's date drill-down along receipt_newest_first

    class Meta:
        ordering = ["-date", "-id"]
        # As Sale's: at 150,000 receipts the list's first page went from a Seq Scan + top-N heapsort of the
        # table to an Index Scan stopped by the LIMIT.
        indexes = [models.Index(fields=["-date", "-id"], name="receipt_newest_first")]
        constraints = [models.CheckConstraint(name="receipt_amount_positive", condition=Q(amount__gt=0))]

    def __str__(self) -> str:
        return f"{self.amount} {self.payment_method} for {self.sale}"


class Refund(models.Model):
    """Credit given on a confirmed sale: money paid back to the customer (`amount_refunded`, by a payment
    method) and/or what the customer no longer owes (`amount_allocated`, taken off the amount due).

    In the accounts it is a credit note for exactly its lines (`credit_total`), with a refund payment for the
    money paid back and an allocation to the sale's invoice for the rest. Recorded by services.refund_record
    or services.sale_cancel, never edited afterwards: a wrong refund is corrected by another document, as a
    bookkeeper would.
    """

    number = models.CharField(max_length=20, unique=True, editable=False, help_text="Generated, e.g. CN-000042.")
    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="refunds")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds",
        help_text="How the money went back; empty when nothing was paid back (a credit only).",
    )
    date = models.DateField(default=timezone.localdate)
    reason = models.CharField(max_length=255, blank=True)
    line_amount_type = models.CharField(max_length=10, choices=LineAmountType.choices)
    credit_subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    credit_tax = models.DecimalField(max_digits=14, decimal_places=2)
    credit_total = models.DecimalField(max_digits=14, decimal_places=2)
    amount_refunded = models.DecimalField("paid back", max_digits=14, decimal_places=2, default=ZERO)
    amount_allocated = models.DecimalField("taken off the amount due", max_digits=14, decimal_places=2, default=ZERO)
    cancels_sale = models.BooleanField(default=False, editable=False)
    # As on a receipt: the accounts deleted the refund payment, so it stops counting until sent again.
    removed_in_books_at = models.DateTimeField("deleted in the accounts", null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [
            models.CheckConstraint(name="refund_credit_positive", condition=Q(credit_total__gt=0)),
            models.CheckConstraint(name="refund_parts_not_negative",
                                   condition=Q(amount_refunded__gte=0, amount_allocated__gte=0)),
            # Within half a cent rather than equal: SQLite (the embedded run) adds decimals as floating point,
            # where 40.00 + 59.99 is not 99.99; PostgreSQL's numeric makes it exact either way.
            models.CheckConstraint(name="refund_parts_make_the_credit", condition=Q(
                credit_total__gt=F("amount_refunded") + F("amount_allocated") - HALF_CENT,
                credit_total__lt=F("amount_refunded") + F("amount_allocated") + HALF_CENT)),
            models.CheckConstraint(name="refund_paid_back_by_a_method",
                                   condition=Q(amount_refunded=0) | Q(payment_method__isnull=False)),
            models.CheckConstraint(name="refund_has_a_number", condition=~Q(number="")),
        ]

    def __str__(self) -> str:
        return self.number or "New refund"


class RefundLine(models.Model):
    """One line of a refund's credit note: a sale line (or a share of the sale's lines, for a refund of an
    amount) with the quantity credited, priced, taxed and booked as on the sale."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    # The sale line it credits, to count what is left to refund of it. No database constraint: a sale's
    # lines are rewritten in bulk, and a refund's lines are history that must outlive them.
    sale_line = models.ForeignKey(SaleLine, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True,
                                  related_name="+")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=4000)
    quantity = models.DecimalField(max_digits=14, decimal_places=4)
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4)
    discount_rate = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=ZERO)
    tax_code = models.CharField(max_length=50, blank=True)
    account_code = models.CharField(max_length=50, blank=True)
    item_code = models.CharField(max_length=50, blank=True)
    kind = models.CharField(max_length=10, choices=SaleLine.Kind.choices, default=SaleLine.Kind.ITEM)

    class Meta:
        ordering = ["refund", "position", "id"]
        constraints = [models.CheckConstraint(name="refund_line_quantity_positive", condition=Q(quantity__gt=0))]

    def __str__(self) -> str:
        return self.description


class Invoice(models.Model):
    """The accounting copy of a Xero sales invoice, also those typed straight into Xero."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        SUBMITTED = "SUBMITTED", "Awaiting approval"
        AUTHORISED = "AUTHORISED", "Awaiting payment"
        PAID = "PAID", "Paid"
        VOIDED = "VOIDED", "Voided"
        DELETED = "DELETED", "Deleted"

    xero_id = models.UUIDField("Xero invoice id", unique=True)
    number = models.CharField(max_length=255, db_index=True)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="invoices")
    sale = models.ForeignKey(Sale, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices")
    status = models.CharField(max_length=12, choices=Status.choices)
    date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    line_amount_type = models.CharField(max_length=10, choices=LineAmountType.choices)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    total_tax = models.DecimalField(max_digits=14, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    amount_due = models.DecimalField(max_digits=14, decimal_places=2)
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2)
    amount_credited = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    reference = models.CharField(max_length=255, blank=True)
    updated_in_xero_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]
        # EXPLAIN ANALYZE at 100,000 invoices: the list (joined to contact and sale) was two Parallel Hash
        # Joins of the three whole tables and a top-N heapsort (~300 ms); with the index, an Index Scan of
        # the first 100 invoices and a Nested Loop to their contacts and sales (~1 ms). The pull's refresh
        # of a contact's figures reads the contact's invoices by the foreign key's own index.
        indexes = [models.Index(fields=["-date", "-id"], name="invoice_newest_first"),
                   # the currency filter's choices: SELECT DISTINCT over 100,000 invoices was ~50 ms, a
                   # loose index scan a few probes
                   models.Index(fields=["currency"], name="invoice_currency")]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("1"))
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO)
    discount_rate = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    account_code = models.CharField(max_length=50, blank=True)
    tax_type = models.CharField(max_length=50, blank=True)
    item_code = models.CharField(max_length=50, blank=True)
    tax_amount = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    line_amount = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)

    class Meta:
        ordering = ["invoice", "position", "id"]

    def __str__(self) -> str:
        return self.description


class CreditNote(models.Model):
    """The accounting copy of a Xero sales credit note (ACCRECCREDIT): the website's refunds and those the
    bookkeeper raised in Xero."""

    Status = Invoice.Status  # Xero gives credit notes the invoices' statuses (docs/xero-api.md 8b)

    xero_id = models.UUIDField("Xero credit note id", unique=True)
    number = models.CharField(max_length=255, db_index=True)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="credit_notes")
    # The website refund it is (pushed from here); empty for one raised in Xero.
    refund = models.ForeignKey(Refund, on_delete=models.SET_NULL, null=True, blank=True, related_name="credit_notes")
    status = models.CharField(max_length=12, choices=Status.choices)
    date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    line_amount_type = models.CharField(max_length=10, choices=LineAmountType.choices)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    total_tax = models.DecimalField(max_digits=14, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    remaining_credit = models.DecimalField(max_digits=14, decimal_places=2)
    reference = models.CharField(max_length=255, blank=True)
    updated_in_xero_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return self.number


class CreditAllocation(models.Model):
    """Part of a credit note applied to a sales invoice, as Xero holds it (rewritten with its credit note)."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="credit_allocations")
    sale = models.ForeignKey(Sale, on_delete=models.SET_NULL, null=True, blank=True, related_name="credit_allocations")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["credit_note", "id"]

    def __str__(self) -> str:
        return f"{self.amount} of {self.credit_note}"


class Payment(models.Model):
    """A payment recorded in Xero, e.g. a direct deposit reconciled from the bank feed."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DELETED = "deleted", "Deleted in Xero"

    xero_id = models.UUIDField("Xero payment id", unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments")
    sale = models.ForeignKey(Sale, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    # Set for money paid back against a credit note (Xero's ARCREDITPAYMENT), not on an invoice.
    credit_note = models.ForeignKey(CreditNote, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="refund_payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, blank=True)
    date = models.DateField()
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    updated_in_xero_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]
        # As Invoice's: at 150,000 payments the list was Hash Joins of whole tables and a top-N heapsort;
        # with the index, an Index Scan of one page and Nested Loops to its invoices, sales and methods.
        indexes = [models.Index(fields=["-date", "-id"], name="payment_newest_first")]

    def __str__(self) -> str:
        return f"{self.amount} on {self.date}"
