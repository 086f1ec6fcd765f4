"""The sync's own records in the admin: each record's Xero state (with requeue), runs, the outbox."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .models import OutboxEntry, SyncRun, XeroLink
from .services.links import links_requeue

LOCAL_ADMIN = {"contact": "admin:ecommerce_contact_change", "sale": "admin:ecommerce_sale_change",
               "receipt": "admin:ecommerce_receipt_change"}


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(XeroLink)
class XeroLinkAdmin(ReadOnly):
    list_display = ["record", "state", "xero_name", "xero_key", "xero_id", "attempts", "last_pushed_at",
                    "short_error"]
    list_filter = ["state", "kind"]
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

    @admin.action(description="Send to Xero again (requeue)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[XeroLink]) -> None:
        count = links_requeue(links=queryset)
        self.message_user(request, f"{count} record(s) will be sent at the next sync.", messages.SUCCESS)

    def get_actions(self, request):
        # Actions are offered although rows are read-only: requeueing is the one change staff make here.
        actions = super().get_actions(request)
        return actions if request.user.has_perm("xero_sync.manage_xero") else {}


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnly):
    list_display = ["started_at", "trigger", "status", "pushed", "pulled", "failed", "calls", "duration"]
    list_filter = ["status", "trigger"]
    date_hierarchy = "started_at"

    @admin.display(description="Took")
    def duration(self, run: SyncRun) -> str:
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else "running"


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnly):
    list_display = ["kind", "local_id", "recorded_at", "not_before"]
    list_filter = ["kind"]
