"""The sync's own records in the admin: each record's Xero state (with requeue), runs, the outbox."""

from django.contrib import admin, messages
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, UUIDField, Value, When
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from ecommerce.admin import ContactAdmin, ReadOnlyAdmin, ReceiptAdmin, SaleAdmin
from ecommerce.models import Contact, Receipt, Sale

from .models import OutboxEntry, OutboxHeld, RecordKind, SyncRun, XeroLink
from .selectors import contacts_for_xero, receipts_for_xero, sales_for_xero
from .services.connection import connection_current
from .services.links import link_advice, links_requeue, links_send_now, receipts_xero_refuses, xero_web_url
from .tasks import BROKER_DOWN_MESSAGE, sync_now_request
from .wording import counted

LOCAL_ADMIN = {"contact": "admin:ecommerce_contact_change", "sale": "admin:ecommerce_sale_change",
               "receipt": "admin:ecommerce_receipt_change"}


@admin.register(XeroLink)
class XeroLinkAdmin(ReadOnlyAdmin):
    list_display = ["record", "state", "xero_status", "xero_name", "xero_key", "xero_id", "attempts",
                    "last_pushed_at", "short_error"]
    list_filter = ["state", "kind", "xero_status"]
    search_fields = ["xero_key", "xero_name", "last_error", "=xero_id"]
    actions = ["requeue"]
    ordering = ["-last_pushed_at", "-id"]

    @admin.display(description="Record", ordering="local_id")
    def record(self, link: XeroLink):
        try:
            url = reverse(LOCAL_ADMIN[link.kind], args=[link.local_id])
        except (KeyError, NoReverseMatch):
            return f"{link.kind} {link.local_id}"
        return format_html('<a href="{}">{} {}</a>', url, link.get_kind_display(), link.xero_key or link.local_id)

    @admin.display(description="Last error")
    def short_error(self, link: XeroLink) -> str:
        return link.last_error[:160]

    def has_manage_xero_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("xero_sync.manage_xero")

    # Offered although rows are read-only: requeueing is the one change staff make here.
    @admin.action(description="Send to Xero again (requeue)", permissions=["manage_xero"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[XeroLink]) -> None:
        count = links_requeue(links=queryset)
        self.message_user(request, f"{count} record(s) will be sent at the next sync.", messages.SUCCESS)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "trigger", "status", "pushed_count", "pulled_count", "failed_count", "calls",
                    "duration"]
    list_filter = ["status", "trigger"]
    date_hierarchy = "started_at"

    @admin.display(description="Pushed")
    def pushed_count(self, run: SyncRun) -> str:
        return counted(run.pushed, nothing="-")

    @admin.display(description="Pulled")
    def pulled_count(self, run: SyncRun) -> str:
        return counted(run.pulled, nothing="-")

    @admin.display(description="Failed")
    def failed_count(self, run: SyncRun) -> str:
        return counted(run.failed, nothing="-")

    @admin.display(description="Took")
    def duration(self, run: SyncRun) -> str:
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "running"


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = ["kind", "local_id", "recorded_at", "not_before"]
    list_filter = ["kind"]


@admin.register(OutboxHeld)
class OutboxHeldAdmin(ReadOnlyAdmin):
    """Changes kept for another organisation this site was connected to; they go when it is again."""

    list_display = ["kind", "local_id", "tenant_id", "held_at"]
    list_filter = ["kind", "tenant_id"]


# --- Xero state on the shop's own admin pages ----------------------------------------------------------

NOT_ELIGIBLE = "not_eligible"
PENDING = XeroLink.State.PENDING
STATE_LABELS = {**dict(XeroLink.State.choices), NOT_ELIGIBLE: "Not for Xero yet"}
STATE_COLOURS = {"synced": "#1b7f3b", "pending": "#8a6d00", "in_flight": "#8a6d00", "error": "#b00020",
                 "locked": "#b00020", "conflict": "#b00020", "dead": "#b00020", NOT_ELIGIBLE: "#666"}


def _local(moment) -> str:
    """A time as the rest of the admin shows it: in the shop's time zone."""
    return date_format(localtime(moment), "DATETIME_FORMAT") if moment else "-"


class XeroStateFilter(admin.SimpleListFilter):
    title = "Xero"
    parameter_name = "xero"

    def lookups(self, request, model_admin):
        return [(state, STATE_LABELS[state]) for state in (
            "synced", "pending", "error", "locked", "conflict", "dead", NOT_ELIGIBLE)]

    def queryset(self, request, queryset):
        return queryset.filter(xero_state_shown=self.value()) if self.value() else queryset


class XeroStateAdminMixin:
    """Adds to a shop admin: a Xero column and filter, a link into Xero, "Send to Xero now" (which each
    admin lists in its `actions`), and the record's Xero state and history on its page."""

    xero_kind: str

    def xero_eligible(self, tenant_id) -> Q:
        """Who goes to Xero, the push's own answer (xero_sync.selectors): what the column calls "Not for
        Xero yet" is what the push leaves out."""
        if self.xero_kind == RecordKind.CONTACT:
            return contacts_for_xero(tenant_id)
        if self.xero_kind == RecordKind.SALE:
            return sales_for_xero()
        return receipts_for_xero()

    def get_queryset(self, request):
        connection = connection_current()
        tenant = connection.tenant_id if connection else None
        links = XeroLink.objects.filter(tenant_id=tenant, kind=self.xero_kind, local_id=OuterRef("pk"))
        waiting = OutboxEntry.objects.filter(kind=self.xero_kind, local_id=OuterRef("pk"))
        invoice_id = Value(None, output_field=UUIDField())
        if self.xero_kind == RecordKind.RECEIPT:  # a payment is seen on its invoice in Xero
            invoice_id = Subquery(XeroLink.objects.filter(tenant_id=tenant, kind=RecordKind.SALE,
                                                          local_id=OuterRef("sale_id")).values("xero_id")[:1])
        return super().get_queryset(request).annotate(
            xero_link_state=Subquery(links.values("state")[:1]),
            xero_link_id=Subquery(links.values("xero_id")[:1]),
            xero_invoice_id=invoice_id,
            xero_tenant=Value(tenant, output_field=UUIDField()),
            xero_link_error=Subquery(links.values("last_error")[:1]),
            xero_waiting=Exists(waiting),
        ).annotate(xero_state_shown=Case(
            When(xero_link_state__in=["error", "locked", "conflict", "dead"], then=F("xero_link_state")),
            When(Q(xero_link_state__isnull=True) & ~self.xero_eligible(tenant), then=Value(NOT_ELIGIBLE)),
            When(xero_waiting=True, then=Value(PENDING)),
            When(xero_link_state="in_flight", then=Value(PENDING)),
            When(xero_link_state__isnull=False, then=F("xero_link_state")),
            When(self.xero_eligible(tenant), then=Value(PENDING)),
            default=Value(NOT_ELIGIBLE),
        ))

    def get_list_display(self, request):
        return [*super().get_list_display(request), "xero_column"]

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), XeroStateFilter]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "xero_panel"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        return [*fieldsets, ("Xero", {"fields": ["xero_panel"]})] if obj else fieldsets

    def _url(self, obj) -> str | None:
        return xero_web_url(kind=self.xero_kind, xero_id=getattr(obj, "xero_link_id", None),
                            tenant_id=getattr(obj, "xero_tenant", None), invoice_xero_id=getattr(obj, "xero_invoice_id", None))

    @admin.display(description="Xero", ordering="xero_state_shown")
    def xero_column(self, obj):
        state = getattr(obj, "xero_state_shown", NOT_ELIGIBLE)
        url = self._url(obj)
        label = format_html('<span class="xero-state xero-{}" style="color:{}">{}</span>', state,
                            STATE_COLOURS.get(state, "#333"), STATE_LABELS.get(state, state))
        if state in ("error", "locked", "conflict", "dead") and getattr(obj, "xero_link_error", ""):
            words = obj.xero_link_error
            label = format_html('{}<br><small class="xero-error">{}</small>', label,
                                words if len(words) <= 140 else words[:139] + "…")
        return format_html('{} <a class="xero-open" href="{}" target="_blank" rel="noopener">open in Xero</a>',
                           label, url) if url else label

    @admin.display(description="Xero")
    def xero_panel(self, obj):
        annotated = self.get_queryset(None).filter(pk=obj.pk).first()
        if annotated is None or annotated.xero_tenant is None:
            return "Not connected to Xero."
        link = XeroLink.objects.filter(tenant_id=annotated.xero_tenant, kind=self.xero_kind, local_id=obj.pk).first()
        rows = [("State", STATE_LABELS.get(annotated.xero_state_shown, annotated.xero_state_shown))]
        if link:
            url = self._url(annotated)
            rows.append(("Xero id", format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url,
                                                link.xero_id) if url else (link.xero_id or "-")))
            if link.xero_name:
                rows.append(("Name in Xero", link.xero_name))
            if link.xero_status:
                rows.append(("Status in Xero", link.xero_status))
            rows += [("Last pushed", _local(link.last_pushed_at)), ("Last pulled", _local(link.last_pulled_at))]
            if link.last_error:
                rows += [("Xero says", link.last_error), ("What to do", link_advice(link))]
        history = format_html_join("", "<li>{} — {}: {}</li>", (
            (_local(event.at), event.action, event.detail)
            for event in (link.events.all()[:20] if link else [])))
        table = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        return format_html('<table class="xero-panel">{}</table><p><strong>History</strong></p><ul>{}</ul>', table,
                           history or format_html("<li>{}</li>", "Nothing yet."))

    def has_manage_xero_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("xero_sync.manage_xero")

    # It resets records Xero refused or gave up on and starts a sync: what managing Xero means.
    @admin.action(description="Send to Xero now", permissions=["manage_xero"])
    def send_to_xero_now(self, request, queryset):
        count = links_send_now(kind=self.xero_kind, local_ids=queryset.values_list("pk", flat=True))
        if sync_now_request(SyncRun.Trigger.MANUAL):
            self.message_user(request, f"{count} record(s) will be sent to Xero in a moment (the quiet period "
                              "is skipped).", messages.SUCCESS)
        else:
            self.message_user(request, f"{count} record(s) are queued for Xero. {BROKER_DOWN_MESSAGE}",
                              messages.WARNING)


def _warn_of_receipts_xero_refuses(admin_site_model, request, receipts) -> None:
    """Said when the receipt is recorded, not found out at the next sync (issue 16 item 11)."""
    for words in receipts_xero_refuses(receipts).values():
        admin_site_model.message_user(request, words, messages.WARNING)


class XeroContactAdmin(XeroStateAdminMixin, ContactAdmin):
    xero_kind = RecordKind.CONTACT
    actions = [*ContactAdmin.actions, "send_to_xero_now"]


class XeroSaleAdmin(XeroStateAdminMixin, SaleAdmin):
    xero_kind = RecordKind.SALE
    actions = [*SaleAdmin.actions, "send_to_xero_now"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The services store new receipts as instances of their own: judge the sale's receipts as saved
        # (read afresh: the page's sale came with its receipts prefetched as they were before).
        if any(formset.model is Receipt and formset.has_changed() for formset in formsets):
            _warn_of_receipts_xero_refuses(self, request, Receipt.objects.filter(sale=form.instance))


class XeroReceiptAdmin(XeroStateAdminMixin, ReceiptAdmin):
    xero_kind = RecordKind.RECEIPT
    actions = [*ReceiptAdmin.actions, "send_to_xero_now"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _warn_of_receipts_xero_refuses(self, request, [obj])


for model, model_admin in ((Contact, XeroContactAdmin), (Sale, XeroSaleAdmin), (Receipt, XeroReceiptAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
