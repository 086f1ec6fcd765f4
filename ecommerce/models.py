"""The shop's records. Staff edit these in the admin; the Xero sync (a separate app) reads them.

Fields carry their own validation (validators, constraints). Rules that read other records (status
changes, a confirmed sale's lines, what a receipt may pay) live once in services.py, which every write
goes through; these models import neither services nor selectors.

Invoice, InvoiceLine and Payment are the accounting side: copies of what Xero holds, written only by the
pull from Xero, read-only for staff.
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

ZERO = Decimal("0")


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "company_name", "id"]
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

    class Meta:
        ordering = ["-date", "-id"]
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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [models.CheckConstraint(name="receipt_amount_positive", condition=Q(amount__gt=0))]

    def __str__(self) -> str:
        return f"{self.amount} {self.payment_method} for {self.sale}"


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
    reference = models.CharField(max_length=255, blank=True)
    updated_in_xero_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]

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
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, blank=True)
    date = models.DateField()
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    updated_in_xero_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return f"{self.amount} on {self.date}"
