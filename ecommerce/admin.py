"""The staff's working surface. Thin: forms validate through the models' clean(), actions call services."""

import csv
import datetime
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, DecimalField, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import selectors, services
from .models import Contact, Invoice, InvoiceLine, Payment, PaymentMethod, Receipt, Sale, SaleLine

COUNTED_INVOICES = ~Q(invoices__status__in=[Invoice.Status.VOIDED, Invoice.Status.DELETED, Invoice.Status.DRAFT])


class LifetimeValueFilter(admin.SimpleListFilter):
    """Segments customers by what Xero has invoiced them, website sales and invoices typed into Xero alike."""

    title = "lifetime invoiced"
    parameter_name = "lifetime"
    BANDS = {"none": (None, Decimal("0.01")), "under-100": (Decimal("0.01"), Decimal("100")),
             "100-500": (Decimal("100"), Decimal("500")), "500-plus": (Decimal("500"), None)}

    def lookups(self, request, model_admin):
        return [("none", "Nothing invoiced"), ("under-100", "Under 100"), ("100-500", "100 to 500"),
                ("500-plus", "500 and more")]

    def queryset(self, request, queryset):
        if self.value() not in self.BANDS:
            return queryset
        low, high = self.BANDS[self.value()]
        if low is not None:
            queryset = queryset.filter(lifetime_invoiced__gte=low)
        if high is not None:
            queryset = queryset.filter(lifetime_invoiced__lt=high)
        return queryset


class LastInvoiceFilter(admin.SimpleListFilter):
    title = "last invoice"
    parameter_name = "last_invoice"
    DAYS = {"30": 30, "90": 90, "365": 365}

    def lookups(self, request, model_admin):
        return [("30", "In the last 30 days"), ("90", "In the last 90 days"), ("365", "In the last year"),
                ("lapsed", "More than a year ago")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() in self.DAYS:
            return queryset.filter(last_invoice_date__gte=today - datetime.timedelta(days=self.DAYS[self.value()]))
        if self.value() == "lapsed":
            return queryset.filter(last_invoice_date__lt=today - datetime.timedelta(days=365))
        return queryset


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["display_name", "email", "phone", "city", "lifetime_invoiced", "invoice_count",
                    "last_invoice_date"]
    list_filter = [LifetimeValueFilter, LastInvoiceFilter, "country", "created_at"]
    # Explicit: the figures make the query grouped, and Django drops Meta.ordering from grouped queries.
    ordering = ["last_name", "first_name", "company_name", "id"]
    search_fields = ["first_name", "last_name", "company_name", "email", "phone"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["export_csv"]
    fieldsets = [
        (None, {"fields": [("first_name", "last_name"), "company_name", "email", "phone"]}),
        (
            "Postal address",
            {"fields": ["address_line1", "address_line2", ("city", "region"), ("postcode", "country")]},
        ),
        ("Record", {"fields": [("created_at", "updated_at")]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        return super().get_queryset(request).annotate(
            lifetime_invoiced=Coalesce(Sum("invoices__total", filter=COUNTED_INVOICES), Decimal("0.00"),
                                       output_field=DecimalField(max_digits=14, decimal_places=2)),
            invoice_count=Count("invoices", filter=COUNTED_INVOICES),
            last_invoice_date=Max("invoices__date", filter=COUNTED_INVOICES),
        )

    @admin.display(description="Name", ordering="last_name")
    def display_name(self, contact: Contact) -> str:
        return contact.display_name

    @admin.display(description="Lifetime invoiced", ordering="lifetime_invoiced")
    def lifetime_invoiced(self, contact: Contact) -> Decimal:
        # SQLite returns the sum unrounded (350.5); money shows to the cent everywhere.
        return Decimal(contact.lifetime_invoiced).quantize(Decimal("0.01"))

    @admin.display(description="Invoices", ordering="invoice_count")
    def invoice_count(self, contact: Contact):
        return contact.invoice_count

    @admin.display(description="Last invoice", ordering="last_invoice_date")
    def last_invoice_date(self, contact: Contact):
        return contact.last_invoice_date

    @admin.action(description="Export selected as CSV (for a campaign)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        writer = csv.writer(response)
        writer.writerow(["name", "first_name", "last_name", "company", "email", "phone", "city", "country",
                         "lifetime_invoiced", "invoices", "last_invoice"])
        for contact in queryset:
            writer.writerow([contact.display_name, contact.first_name, contact.last_name, contact.company_name,
                             contact.email, contact.phone, contact.city, contact.country, self.lifetime_invoiced(contact),
                             contact.invoice_count, contact.last_invoice_date or ""])
        return response


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "active"]
    list_editable = ["active"]
    list_filter = ["active"]
    search_fields = ["name", "code"]


class SaleLineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # Unchanged extra forms have empty cleaned_data; what remains are the lines the sale will keep.
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if self.instance.status == Sale.Status.CONFIRMED and not kept:
            raise ValidationError("A confirmed sale needs at least one line.")


def _is_cancelled(sale: Sale | None) -> bool:
    return sale is not None and sale.status == Sale.Status.CANCELLED


class SaleLineInline(admin.TabularInline):
    """Lines of a cancelled sale are frozen, as sale_update keeps them."""

    model = SaleLine
    formset = SaleLineFormSet
    extra = 1

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not _is_cancelled(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not _is_cancelled(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not _is_cancelled(obj) and super().has_delete_permission(request, obj)
    fields = [
        "position", "kind", "description", "quantity", "unit_amount", "discount_rate", "tax_rate", "tax_code",
        "account_code", "item_code",
    ]


class ReceiptFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        """Judge the new and changed receipts together: each alone may fit under the amount due while
        together they overpay. On a sale that is new or not confirmed, no receipt is taken at all."""
        super().clean()
        sale = self.instance
        touched = [
            form for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
            and (form.instance.pk is None or {"amount", "overpayment_allowed"} & set(form.changed_data))
        ]
        if not touched or any(form.errors for form in touched):
            return
        if not sale.pk or sale.status != Sale.Status.CONFIRMED:
            raise ValidationError(
                "Receipts can only be taken on confirmed sales: save and confirm the sale, then add them."
            )
        due = selectors.sale_amount_due(sale, excluding_receipts={form.instance.pk for form in touched})
        amount = sum(form.cleaned_data["amount"] for form in touched)
        if amount > due and not any(form.cleaned_data.get("overpayment_allowed") for form in touched):
            raise ValidationError(
                f"These receipts add up to {amount}, more than the {due} still due on {sale.number}. "
                "Tick 'overpayment allowed' to accept it anyway."
            )


class ReceiptInline(admin.TabularInline):
    model = Receipt
    formset = ReceiptFormSet
    extra = 0
    fields = ["payment_method", "amount", "date", "reference", "overpayment_allowed"]


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    fields = ["date", "amount", "payment_method", "reference", "status"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Payments recorded in Xero"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Sale)
class SaleAdmin(admin.ModelAdmin):
    list_display = ["number", "contact", "date", "status", "currency", "total", "payment_state"]
    list_filter = ["status", "line_amount_type", "currency", "date"]
    search_fields = ["number", "reference", "contact__first_name", "contact__last_name",
                     "contact__company_name", "contact__email"]
    date_hierarchy = "date"
    autocomplete_fields = ["contact"]
    inlines = [SaleLineInline, ReceiptInline, PaymentInline]
    readonly_fields = ["number", "subtotal", "total_tax", "total", "amount_paid", "amount_due", "payment_state",
                       "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["number", "contact", ("date", "due_date"), "status"]}),
        ("Pricing", {"fields": [("currency", "line_amount_type")]}),
        ("Totals", {"fields": [("subtotal", "total_tax", "total"), ("amount_paid", "amount_due", "payment_state")]}),
        ("Notes", {"fields": ["reference", "notes", ("created_at", "updated_at")]}),
    ]
    actions = ["confirm_sales", "cancel_sales"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Sale]:
        return super().get_queryset(request).select_related("contact").prefetch_related(*selectors.SALE_PREFETCH)

    def get_readonly_fields(self, request: HttpRequest, obj: Sale | None = None):
        if _is_cancelled(obj):
            return [field.name for field in Sale._meta.fields if field.name != "id"] + self.readonly_fields
        return self.readonly_fields

    @admin.display(description="Subtotal")
    def subtotal(self, sale: Sale):
        return selectors.sale_totals(sale).subtotal if sale.pk else "-"

    @admin.display(description="Tax")
    def total_tax(self, sale: Sale):
        return selectors.sale_totals(sale).total_tax if sale.pk else "-"

    @admin.display(description="Total")
    def total(self, sale: Sale):
        return selectors.sale_totals(sale).total if sale.pk else "-"

    @admin.display(description="Paid")
    def amount_paid(self, sale: Sale):
        return selectors.sale_amount_paid(sale) if sale.pk else "-"

    @admin.display(description="Due")
    def amount_due(self, sale: Sale):
        return selectors.sale_amount_due(sale) if sale.pk else "-"

    @admin.display(description="Payment")
    def payment_state(self, sale: Sale):
        return selectors.sale_payment_state(sale).label if sale.pk else "-"

    def _apply(self, request: HttpRequest, queryset: QuerySet[Sale], service, done: str) -> None:
        changed = 0
        for sale in queryset:
            try:
                service(sale=sale)
                changed += 1
            except ValidationError as error:
                self.message_user(request, f"{sale.number}: {' '.join(error.messages)}", messages.ERROR)
        if changed:
            self.message_user(request, f"{changed} sale(s) {done}.", messages.SUCCESS)

    @admin.action(description="Confirm selected sales")
    def confirm_sales(self, request: HttpRequest, queryset: QuerySet[Sale]) -> None:
        self._apply(request, queryset, services.sale_confirm, "confirmed")

    @admin.action(description="Cancel selected sales")
    def cancel_sales(self, request: HttpRequest, queryset: QuerySet[Sale]) -> None:
        self._apply(request, queryset, services.sale_cancel, "cancelled")


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = ["sale", "payment_method", "amount", "date", "reference"]
    list_filter = ["payment_method", "date"]
    search_fields = ["sale__number", "reference", "sale__contact__last_name", "sale__contact__company_name"]
    autocomplete_fields = ["sale"]
    date_hierarchy = "date"
    list_select_related = ["sale", "payment_method"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records staff read but never edit here, such as invoices and payments, which mirror Xero (they are
    changed there)."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["description", "quantity", "unit_amount", "discount_rate", "account_code", "tax_type",
              "tax_amount", "line_amount"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "contact", "date", "status", "currency", "total", "amount_due", "sale"]
    list_filter = ["status", "currency", "date"]
    search_fields = ["number", "reference", "contact__last_name", "contact__company_name", "contact__email"]
    list_select_related = ["contact", "sale"]
    inlines = [InvoiceLineInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["date", "amount", "currency", "invoice", "sale", "payment_method", "reference", "status"]
    list_filter = ["status", "payment_method", "date"]
    search_fields = ["reference", "invoice__number", "sale__number"]
    list_select_related = ["invoice", "sale", "payment_method"]
