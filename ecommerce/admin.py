"""The staff's working surface. Thin: forms check the fields, every save and action calls a service.

Saves follow HackSoft's styleguide (save_model calls the service), with one addition: a service's
ValidationError comes back on the form, as any invalid field does (see ServiceSavesAdmin).
"""

import contextlib
import csv
import datetime
from collections.abc import Iterator
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext

from . import selectors, services
from .models import (
    Contact,
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
from .refund_admin import refund_view


class ServiceRefused(Exception):
    """A service refused what a staff member saved; carries its ValidationError out of the view's
    transaction, so that transaction rolls back."""

    def __init__(self, error: ValidationError):
        super().__init__(error)
        self.error = error


@contextlib.contextmanager
def _refusal_shown_on_the_form() -> Iterator[None]:
    try:
        yield
    except ValidationError as error:
        raise ServiceRefused(error) from error


def _adopt(shown: Model, saved: Model) -> None:
    """The admin goes on with the instance its form built (to log it and redirect to its page); give it
    what the service stored, such as the new record's id and number."""
    if shown is saved:
        return
    for field in saved._meta.concrete_fields:
        setattr(shown, field.attname, getattr(saved, field.attname))
    shown._state.adding, shown._state.db = False, saved._state.db


def distinct_values(model, column: str) -> list:
    """The distinct values of an indexed, non-null column, walked along its index one value at a time (a
    "loose index scan": one index probe per distinct value). SELECT DISTINCT reads every row: ~50 ms at
    100,000 invoices or 300,000 Xero links, for the four or five values a filter offers."""
    table, name = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH RECURSIVE found(value) AS (
                SELECT MIN({name}) FROM {table}
                UNION ALL
                SELECT (SELECT MIN({name}) FROM {table} WHERE {name} > found.value) FROM found
                WHERE found.value IS NOT NULL
            )
            SELECT value FROM found WHERE value IS NOT NULL""")
        return [value for (value,) in cursor.fetchall()]


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter (currency, country, status in Xero...) for a non-null column with an
    index of its own: the values offered come from distinct_values, not from SELECT DISTINCT."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)  # lookup_choices is lazy
        self.lookup_choices = distinct_values(model, field.column)


class LargeListAdmin(admin.ModelAdmin):
    """A list that may hold hundreds of thousands of rows: no second COUNT of the whole table beside the
    filtered one (Django's "N results (M total)"), so a filtered page costs one count, of what it shows."""

    show_full_result_count = False

    def action_checkbox(self, obj):
        """The row's checkbox, as Django's own (same markup), written directly: Django renders a
        CheckboxInput through the template engine for every row, about a quarter of a 100-row page's time."""
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, str(obj.pk), label)


def _any_contains(fields, term: str) -> Q:
    matches = Q()
    for field in fields:
        matches |= Q(**{f"{field}__icontains": term})
    return matches


# Up to this many ids, a set a list filters on is read once and sent as a list: a page's queries (the
# rows, their COUNT, the date drill-down's two) then each probe a constant instead of searching again.
FEW_IDS = 10_000


def few_ids(queryset: QuerySet):
    """The ids `queryset` selects, read once when they are few, else the queryset itself (a subquery)."""
    return id_list(list(queryset.values_list("pk", flat=True)[:FEW_IDS + 1]), otherwise=queryset.values("pk"))


def id_list(ids: list, *, otherwise):
    """`ids` to filter on with `__in` when there are at most FEW_IDS, else `otherwise`."""
    if len(ids) > FEW_IDS:
        return otherwise
    return ids_as_parameter(ids)


def ids_as_parameter(ids) -> list | RawSQL:
    """Ids to filter on with `__in`. On PostgreSQL a long list goes as one array parameter
    (`IN (SELECT unnest(...))`), not as thousands of placeholders that each of a page's queries would build
    and send again; and as one array literal ('{1,2,3}'), since psycopg2 writes a Python list as
    ARRAY[1,2,3], thousands of constants for the server to parse and plan (~25 ms per query for 5,000
    ids, against 10 ms to run it)."""
    ids = list(ids)
    if connection.vendor == "postgresql" and len(ids) > 100:
        return RawSQL("SELECT unnest(%s::bigint[])", ("{" + ",".join(str(int(pk)) for pk in ids) + "}",))
    return ids


def contacts_matching(term: str, fields=("first_name", "last_name", "company_name", "email")):
    return few_ids(Contact.objects.filter(_any_contains(fields, term)))


class SubquerySearchAdmin(LargeListAdmin):
    """Search across a relation (a sale's contact's name) without joining it to every row.

    Django's own search joins the related table and tests each field of each joined row: at 100,000 sales
    that was six LIKEs on each of 100,000 joined rows (~280 ms), repeated by the COUNT and the date
    drill-down. Here `search_q` says what a term matches, as alternatives (an OR): the list's own columns,
    which the trigram indexes answer together (ecommerce.search_indexes), and each related set (`contact
    IN (the contacts matching)`), each read on its own, by its own index. One OR of them all in one query
    could use no index and tested every row (~150 ms at 100,000 sales). The ids found, when they are few,
    then filter the list, its COUNT and its date drill-down. `search_fields` stays declared for the search
    box."""

    search_q = None  # (term) -> Q; without it, Django's own search (fine on a single table)

    def get_search_results(self, request, queryset, search_term):
        if self.search_q is None:
            return super().get_search_results(request, queryset, search_term)
        found, too_many = None, Q()
        for term in smart_split(search_term):
            if term[:1] in ('"', "'") and term[-1:] == term[:1]:
                term = unescape_string_literal(term)
            matches = self.search_q(term)
            ids = self._ids_matching(matches)
            if ids is None:
                too_many &= matches
            else:
                found = ids if found is None else found & ids
        if found is not None:
            queryset = queryset.filter(pk__in=ids_as_parameter(sorted(found)))
        if too_many:  # a term matching most of the table (a single letter): its test in SQL, row by row
            queryset = queryset.filter(pk__in=self.model._default_manager.filter(too_many).values("pk"))
        return queryset, False

    def _ids_matching(self, matches: Q) -> set | None:
        """The ids of the records `matches` selects: its own columns' tests in one query, each `__in` a
        related set in one query of its own. None when one finds more than FEW_IDS."""
        alternatives = matches.children if matches.connector == Q.OR and not matches.negated else [matches]
        own, related = Q(), []
        for part in alternatives:
            if isinstance(part, tuple) and part[0].endswith("__in"):
                related.append(Q(part))
            else:
                own |= Q(part)
        found = set()
        for part in ([own] if own else []) + related:
            ids = list(self.model._default_manager.filter(part).order_by().values_list("pk", flat=True)[
                :FEW_IDS + 1])
            if len(ids) > FEW_IDS:
                return None
            found.update(ids)
        return found


class ServiceSavesAdmin(SubquerySearchAdmin):
    """An admin whose saves call the services (in save_model/save_related, which subclasses define).

    Django validates the form and its inlines, then calls save_model and save_related inside the view's
    transaction, where a ValidationError would be a 500. A service's refusal there is raised as
    ServiceRefused, which rolls that transaction back (nothing is stored, not even a sale number); the
    same POST is then validated again with the service's messages added to the form, and the page comes
    back with them, as for any invalid field. The service runs once; the second pass only renders.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            request._service_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        # The list's editable columns save through save_model too, in a transaction of their own.
        try:
            return super().changelist_view(request, extra_context)
        except ServiceRefused as refused:
            self.message_user(request, " ".join(refused.error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        if refusal is None:
            return form
        return type(form.__name__, (_ShowsRefusal, form), {"refusal": refusal})


class _ShowsRefusal:
    """Mixed into an admin form to add a service's refusal to its errors: messages about one of the form's
    fields on that field, the others at the top of the form."""

    refusal: ValidationError

    def clean(self):
        cleaned = super().clean()
        by_key = self.refusal.message_dict if hasattr(self.refusal, "error_dict") else {
            NON_FIELD_ERRORS: self.refusal.messages}
        for key, shown in by_key.items():
            if key in self.fields:
                self.add_error(key, shown)
            else:
                self.add_error(None, shown if key == NON_FIELD_ERRORS else [f"{key}: {text}" for text in shown])
        return cleaned


def _spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, or a tab or carriage return first)
    starts with a quote instead, which spreadsheets show as text (OWASP's advice for CSV injection).
    Names come from the website and from Xero, so any of them may be hostile."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


EXPORT_CHUNK = 2000


class _Echo:
    """A file that hands back what csv.writer writes to it, to stream the rows one by one."""

    def write(self, value: str) -> str:
        return value


class LifetimeValueFilter(admin.SimpleListFilter):
    """Segments customers by what Xero has invoiced them, website sales and invoices typed into Xero alike
    (Contact.invoiced_total, kept by the pull: see ecommerce/invoice_totals.py)."""

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
            queryset = queryset.filter(invoiced_total__gte=low)
        if high is not None:
            queryset = queryset.filter(invoiced_total__lt=high)
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


def contact_label(contact: Contact) -> str:
    """A contact as the sale's picker shows it: the name and what tells two David Smiths apart (the person
    behind a company, the email, the phone, the town)."""
    details = [contact.full_name if contact.company_name else contact.company_name, contact.email, contact.phone,
               contact.city]
    shown = " · ".join(detail for detail in details if detail)
    return f"{contact.display_name} — {shown}" if shown else contact.display_name


class LabelledAutocompleteJsonView(AutocompleteJsonView):
    """The admin's autocomplete, its entries worded by the chosen record's admin (`autocomplete_label`)
    where it has one, else as Django words them (the record's str)."""

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        label = getattr(self.model_admin, "autocomplete_label", None)
        return {**result, "text": label(obj)} if label else result


def _labelled_autocomplete_view(request):
    return LabelledAutocompleteJsonView.as_view(admin_site=admin.site)(request)


# The site's autocomplete URL is one for every model (admin:autocomplete); its view is the site's to give.
admin.site.autocomplete_view = _labelled_autocomplete_view


@admin.register(Contact)
class ContactAdmin(ServiceSavesAdmin):
    # The figures are columns of the contact (kept by the pull), not sums per request: the list sorts,
    # filters and counts on them like any other column, a page at a time.
    list_display = ["display_name", "email", "phone", "city", "lifetime_invoiced", "invoice_count",
                    "last_invoice_date"]
    list_filter = [LifetimeValueFilter, LastInvoiceFilter, ("country", IndexedValuesFilter), "created_at"]
    search_fields = ["first_name", "last_name", "company_name", "email", "phone"]

    def search_q(self, term: str) -> Q:
        return _any_contains(self.search_fields, term)
    readonly_fields = ["created_at", "updated_at", "invoiced_total", "invoice_count", "last_invoice_date"]
    actions = ["export_csv"]
    fieldsets = [
        (None, {"fields": [("first_name", "last_name"), "company_name", "email", "phone"]}),
        (
            "Postal address",
            {"fields": ["address_line1", "address_line2", ("city", "region"), ("postcode", "country")]},
        ),
        ("Invoiced in the accounts", {"fields": [("invoiced_total", "invoice_count", "last_invoice_date")]}),
        ("Record", {"fields": [("created_at", "updated_at")]}),
    ]

    @admin.display(description="Name", ordering="last_name")
    def display_name(self, contact: Contact) -> str:
        return contact.display_name

    def autocomplete_label(self, contact: Contact) -> str:
        return contact_label(contact)

    @admin.display(description="Lifetime invoiced", ordering="invoiced_total")
    def lifetime_invoiced(self, contact: Contact) -> Decimal:
        return contact.invoiced_total

    def save_model(self, request: HttpRequest, obj: Contact, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.CONTACT_FIELDS if name in form.cleaned_data}
        with _refusal_shown_on_the_form():
            saved = services.contact_update(contact=obj, **fields) if change else services.contact_create(**fields)
        _adopt(obj, saved)

    EXPORT_COLUMNS = ["name", "first_name", "last_name", "company", "email", "phone", "city", "country",
                      "lifetime_invoiced", "invoices", "last_invoice"]
    EXPORT_FIELDS = ["first_name", "last_name", "company_name", "email", "phone", "city", "country",
                     "invoiced_total", "invoice_count", "last_invoice_date"]

    @admin.action(description="Export selected as CSV (for a campaign)", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Contact]) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())

        # The columns it writes and nothing else (no Xero state per row), read EXPORT_CHUNK rows at a time:
        # on PostgreSQL a server-side cursor, so 50,000 contacts stream in the memory of one chunk.
        values = queryset.values_list(*self.EXPORT_FIELDS)

        def rows() -> Iterator[str]:
            yield writer.writerow(self.EXPORT_COLUMNS)
            for first, last, company, *others, invoiced, count, latest in values.iterator(chunk_size=EXPORT_CHUNK):
                name = company or " ".join(part for part in (first, last) if part)
                yield writer.writerow([_spreadsheet_safe(value) for value in (
                    name, first, last, company, *others, invoiced, count, latest or "")])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ServiceSavesAdmin):
    list_display = ["name", "code", "active"]
    list_editable = ["active"]
    list_filter = ["active"]
    search_fields = ["name", "code"]

    def search_q(self, term: str) -> Q:
        return _any_contains(self.search_fields, term)

    def save_model(self, request: HttpRequest, obj: PaymentMethod, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.PAYMENT_METHOD_FIELDS
                  if name in form.cleaned_data}
        with _refusal_shown_on_the_form():
            saved = (services.payment_method_update(method=obj, **fields) if change
                     else services.payment_method_create(**fields))
        _adopt(obj, saved)


def _is_cancelled(sale: Sale | None) -> bool:
    return sale is not None and sale.status == Sale.Status.CANCELLED


class SaleLineInline(admin.TabularInline):
    """Lines of a cancelled sale are frozen, as sale_update keeps them."""

    model = SaleLine
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


def _deleting(form) -> bool:
    return bool(form.cleaned_data.get("DELETE"))


def _sale_lines(formset) -> list[dict] | None:
    """The lines the sale keeps, for sale_create/sale_update, in the order of their positions (as the
    sale lists them), or None when the inline changed nothing. Existing lines carry their id."""
    if formset is None or not formset.has_changed():
        return None
    kept = []
    for index, form in enumerate(formset.forms):
        if (form.instance.pk is None and not form.has_changed()) or _deleting(form):
            continue  # the blank row, or a line ticked for deletion
        row = {name: form.cleaned_data[name] for name in services.LINE_FIELDS if name in form.cleaned_data}
        if form.instance.pk is not None:
            row[services.LINE_ID] = form.instance.pk
        kept.append((form.cleaned_data.get("position") or 0, index, row))
    return [row for _, _, row in sorted(kept, key=lambda item: item[:2])]


def _receipt_changes(formset) -> dict | None:
    """What the receipts inline asks of receipts_save, or None when it changed nothing."""
    if formset is None or not formset.has_changed():
        return None
    changes = {"record": [], "change": [], "remove": []}
    for form in formset.forms:
        if not form.has_changed():
            continue
        fields = {name: form.cleaned_data[name] for name in services.RECEIPT_FIELDS if name in form.cleaned_data}
        if form.instance.pk is None:
            if not _deleting(form):
                changes["record"].append(fields)
        elif _deleting(form):
            changes["remove"].append(form.instance)
        else:
            changes["change"].append((form.instance, fields))
    return changes


def _note_inline_writes(formsets) -> None:
    """What Django's formset.save() would leave behind for the admin's change history."""
    for formset in formsets:
        changed = [form for form in formset.forms if form.has_changed()]
        formset.new_objects = [form.instance for form in changed if form.instance.pk is None and not _deleting(form)]
        formset.deleted_objects = [form.instance for form in changed if form.instance.pk and _deleting(form)]
        formset.changed_objects = [(form.instance, form.changed_data) for form in changed
                                   if form.instance.pk and not _deleting(form)]


class ReceiptInline(admin.TabularInline):
    model = Receipt
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


class RefundInline(admin.TabularInline):
    """The sale's refunds, as recorded (they are never edited: a wrong one is corrected by another)."""

    model = Refund
    extra = 0
    fields = ["number", "date", "credit_total", "amount_refunded", "amount_allocated", "payment_method", "reason",
              "removed_in_books_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Sale)
class SaleAdmin(ServiceSavesAdmin):
    list_display = ["number", "contact", "date", "status", "currency", "total", "payment_state"]
    list_filter = ["status", "line_amount_type", ("currency", IndexedValuesFilter), "date"]
    search_fields = ["number", "reference", "contact__first_name", "contact__last_name",
                     "contact__company_name", "contact__email"]

    def search_q(self, term: str) -> Q:
        return _any_contains(["number", "reference"], term) | Q(contact__in=contacts_matching(term))
    date_hierarchy = "date"
    autocomplete_fields = ["contact"]
    inlines = [SaleLineInline, ReceiptInline, PaymentInline, RefundInline]
    readonly_fields = ["number", "subtotal", "total_tax", "total", "amount_paid", "amount_due", "payment_state",
                       "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["number", "contact", ("date", "due_date"), "status"]}),
        ("Pricing", {"fields": [("currency", "line_amount_type")]}),
        ("Totals", {"fields": [("subtotal", "total_tax", "total"), ("amount_paid", "amount_due", "payment_state")]}),
        ("Notes", {"fields": ["reference", "notes", ("created_at", "updated_at")]}),
    ]
    actions = ["confirm_sales", "cancel_sales"]

    # The contacts by a query of their own for the page (prefetch), not a join: a list sorted by the Xero
    # column or a filter sorts the whole table, and the join (which Django adds for a related column unless
    # told otherwise) hashed 50,000 contacts to sort 100,000 sales (EXPLAIN: ~200 ms of a 320 ms query).
    list_select_related = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Sale]:
        return super().get_queryset(request).prefetch_related("contact", *selectors.SALE_LIST_PREFETCH)

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

    def save_model(self, request: HttpRequest, obj: Sale, form, change: bool) -> None:
        """Nothing here: the sale is saved with its lines and receipts in save_related, where the inlines
        are at hand, so that one service call writes the sale and its lines together."""

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        by_prefix = {formset.prefix: formset for formset in formsets}
        lines = _sale_lines(by_prefix.get("lines"))
        receipts = _receipt_changes(by_prefix.get("receipts"))
        sale = form.instance
        changed = form.changed_data if change else list(form.cleaned_data)
        fields = {name: form.cleaned_data[name] for name in changed if name in services.SALE_FIELDS}
        status = form.cleaned_data.get("status") if "status" in changed else None
        with _refusal_shown_on_the_form():
            if not change:
                saved = services.sale_create(contact=fields.pop("contact"), lines=lines or [],
                                             confirm=status == Sale.Status.CONFIRMED, **fields)
                if status == Sale.Status.CANCELLED:
                    saved = services.sale_cancel(sale=saved)
            elif fields or status is not None or lines is not None:
                saved = services.sale_update(sale=sale, lines=lines, status=status, **fields)
            else:
                saved = sale
            if receipts:
                services.receipts_save(sale=saved, **receipts)
        _adopt(sale, saved)
        _note_inline_writes(formsets)

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

    @admin.action(description="Confirm selected sales", permissions=["change"])
    def confirm_sales(self, request: HttpRequest, queryset: QuerySet[Sale]) -> None:
        self._apply(request, queryset, services.sale_confirm, "confirmed")

    @admin.action(description="Cancel selected sales", permissions=["change"])
    def cancel_sales(self, request: HttpRequest, queryset: QuerySet[Sale]) -> None:
        # A sale with money received is refused here with what to do: "Record a refund" on its page offers
        # "Cancel and refund", which says how the money goes back.
        self._apply(request, queryset, services.sale_cancel, "cancelled")

    def get_urls(self):
        refund = self.admin_site.admin_view(lambda request, object_id: refund_view(self, request, object_id))
        return [path("<path:object_id>/refund/", refund, name="ecommerce_sale_refund"), *super().get_urls()]


@admin.register(Receipt)
class ReceiptAdmin(ServiceSavesAdmin):
    list_display = ["sale", "payment_method", "amount", "date", "reference"]
    list_filter = ["payment_method", "date"]
    search_fields = ["sale__number", "reference", "sale__contact__last_name", "sale__contact__company_name"]

    def search_q(self, term: str) -> Q:
        return Q(reference__icontains=term) | Q(sale__in=few_ids(Sale.objects.filter(
            Q(number__icontains=term) | Q(contact__in=contacts_matching(term, ["last_name", "company_name"])))))
    autocomplete_fields = ["sale"]
    date_hierarchy = "date"
    list_select_related = ["sale", "payment_method"]

    def save_model(self, request: HttpRequest, obj: Receipt, form, change: bool) -> None:
        # Through the services, the sale's row lock is on this path: two staff recording receipts on one
        # sale at once cannot both fit under the same amount due.
        fields = {name: form.cleaned_data[name] for name in services.RECEIPT_FIELDS if name in form.cleaned_data}
        sale = form.cleaned_data.get("sale")
        with _refusal_shown_on_the_form():
            if change:
                saved = services.receipt_update(receipt=obj, sale=sale, **fields)
            else:
                saved = services.receipt_record(sale=sale, **fields)
        _adopt(obj, saved)


class ReadOnlyAdmin(SubquerySearchAdmin):
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
    list_filter = ["status", ("currency", IndexedValuesFilter), "date"]
    search_fields = ["number", "reference", "contact__last_name", "contact__company_name", "contact__email"]
    list_select_related = ["contact", "sale"]

    def search_q(self, term: str) -> Q:
        return _any_contains(["number", "reference"], term) | Q(contact__in=contacts_matching(
            term, ["last_name", "company_name", "email"]))
    inlines = [InvoiceLineInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["date", "amount", "currency", "invoice", "sale", "payment_method", "reference", "status"]
    list_filter = ["status", "payment_method", "date"]
    search_fields = ["reference", "invoice__number", "sale__number"]

    def search_q(self, term: str) -> Q:
        return (Q(reference__icontains=term)
                | Q(invoice__in=few_ids(Invoice.objects.filter(number__icontains=term)))
                | Q(sale__in=few_ids(Sale.objects.filter(number__icontains=term))))
    list_select_related = ["invoice", "sale", "payment_method"]


class RefundLineInline(admin.TabularInline):
    model = RefundLine
    extra = 0
    can_delete = False
    fields = ["description", "quantity", "unit_amount", "discount_rate", "tax_rate", "tax_code", "account_code"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Refunds as recorded on their sales (recorded from the sale, never edited here)."""

    list_display = ["number", "sale", "date", "credit_total", "amount_refunded", "payment_method"]
    list_filter = ["payment_method", "date"]
    search_fields = ["number", "sale__number"]

    def search_q(self, term: str) -> Q:
        return Q(number__icontains=term) | Q(sale__in=few_ids(Sale.objects.filter(number__icontains=term)))
    list_select_related = ["sale", "payment_method"]
    date_hierarchy = "date"
    inlines = [RefundLineInline]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Xero's sales credit notes as pulled: the website's refunds and those the bookkeeper raised."""

    list_display = ["number", "contact", "date", "status", "currency", "total", "remaining_credit", "refund"]
    list_filter = ["status", "date"]
    search_fields = ["number", "reference", "contact__last_name", "contact__company_name", "contact__email"]
    list_select_related = ["contact", "refund"]

    def search_q(self, term: str) -> Q:
        return _any_contains(["number", "reference"], term) | Q(contact__in=contacts_matching(
            term, ["last_name", "company_name", "email"]))
