"""The Xero pages. Thin: parse the request, call a service, render or redirect."""

from functools import wraps

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ecommerce.models import PaymentMethod, SaleLine

from . import selectors
from .charts import bar_chart
from .errors import XeroError
from .forms import PaymentMethodConfigForm, SyncSettingsForm, TaxMappingForm, TenantChoiceForm
from .models import PaymentMethodConfig, SyncRun, TaxMapping
from .services import configuration
from .services.attempts import attempt_pending_for
from .services.connection import (
    ConnectError,
    connect_choose_tenant,
    connect_complete,
    connect_start,
    connection_current,
    disconnect,
)
from .services.links import links_with_problems
from .services.outbox import outbox_backlog, outbox_due_at
from .tasks import BROKER_DOWN_MESSAGE, sync_now_request


def xero_staff_required(view):
    """Staff with the 'manage Xero' permission (superusers have it); others never reach a Xero page."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_active and user.is_staff):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user.has_perm("xero_sync.manage_xero"):
            raise PermissionDenied("You need the 'manage Xero' permission.")
        return view(request, *args, **kwargs)

    return guarded


def _page(request: HttpRequest, template: str, title: str, **context) -> HttpResponse:
    return render(request, template, {**admin.site.each_context(request), "title": title, **context})


def _save_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, problems in error.error_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error)


def _tax_codes() -> list[str]:
    return sorted(set(_tax_codes_in_use()) | set(TaxMapping.objects.values_list("tax_code", flat=True)))


def _tax_codes_in_use() -> list[str]:
    """The distinct tax codes on sale lines, walked along their index one code at a time (a "loose index
    scan"): a handful of index probes however many lines there are, where SELECT DISTINCT reads them all
    (~200 ms at 550,000 lines; see the index's comment on SaleLine)."""
    table, column = connection.ops.quote_name(SaleLine._meta.db_table), connection.ops.quote_name("tax_code")
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH RECURSIVE used(code) AS (
                SELECT MIN({column}) FROM {table} WHERE {column} > %s
                UNION ALL
                SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > used.code) FROM used
                WHERE used.code IS NOT NULL
            )
            SELECT code FROM used WHERE code IS NOT NULL""", [""])
        return [code for (code,) in cursor.fetchall()]


def _method_forms(data, methods: QuerySet[PaymentMethod], accounts: list[dict]):
    configs = {config.payment_method_id: config for config in PaymentMethodConfig.objects.all()}
    forms = []
    for method in methods:
        config = configs.get(method.pk)
        initial = {"direction": config.direction if config else PaymentMethodConfig.Direction.NONE,
                   "xero_account_code": config.xero_account_code if config else ""}
        forms.append((method, PaymentMethodConfigForm(data, prefix=f"method-{method.pk}", initial=initial,
                                                      payment_accounts=accounts)))
    return forms


@xero_staff_required
def settings_page(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    current = configuration.sync_settings()
    section = request.POST.get("section") if request.method == "POST" else None
    accounts = configuration.payment_accounts(connection)
    revenue = configuration.revenue_accounts(connection)
    tax_types = configuration.revenue_tax_types(connection)
    methods = PaymentMethod.objects.order_by("name")

    sync_form = SyncSettingsForm(
        request.POST if section == "sync" else None, revenue_accounts=revenue,
        initial={field: getattr(current, field) for field in (
            "auto_sync", "debounce_seconds", "max_wait_seconds", "default_sales_account_code",
            "shipping_account_code")},
    )
    method_forms = _method_forms(request.POST if section == "payment_methods" else None, methods, accounts)
    mappings = dict(TaxMapping.objects.values_list("tax_code", "xero_tax_type"))
    tax_forms = [
        TaxMappingForm(request.POST if section == "tax" else None, prefix=f"tax-{index}", tax_types=tax_types,
                       initial={"tax_code": code, "xero_tax_type": mappings.get(code, "")})
        for index, code in enumerate(_tax_codes())
    ]

    if section == "sync" and sync_form.is_valid():
        try:
            configuration.sync_settings_update(**sync_form.cleaned_data)
            messages.success(request, "Sync settings saved.")
            return redirect("xero_sync:settings")
        except ValidationError as error:
            _save_errors(sync_form, error)
    elif section == "payment_methods" and all(form.is_valid() for _, form in method_forms):
        failed = False
        for method, form in method_forms:
            try:
                configuration.payment_method_configure(
                    payment_method=method, direction=form.cleaned_data["direction"],
                    account_code=form.cleaned_data["xero_account_code"])
            except ValidationError as error:
                _save_errors(form, error)
                failed = True
        if not failed:
            messages.success(request, "Payment methods saved.")
            return redirect("xero_sync:settings")
    elif section == "tax" and all(form.is_valid() for form in tax_forms):
        failed = False
        for form in tax_forms:
            try:
                configuration.tax_mapping_set(**form.cleaned_data)
            except ValidationError as error:
                _save_errors(form, error)
                failed = True
        if not failed:
            messages.success(request, "Tax mapping saved.")
            return redirect("xero_sync:settings")
    if section:
        messages.error(request, "Nothing was saved: please correct the errors below.")
    series = selectors.daily_series()
    pause = selectors.sync_pause(connection)

    return _page(
        request, "xero_sync/settings.html", "Xero settings",
        connection=connection, sync_form=sync_form, method_forms=method_forms, tax_forms=tax_forms,
        chart_known=bool(connection and connection.chart_fetched_at),
        runs=SyncRun.objects.all()[:10], problems=links_with_problems()[:20], backlog=outbox_backlog(),
        next_run=outbox_due_at(debounce_seconds=current.debounce_seconds, max_wait_seconds=current.max_wait_seconds)
        if current.auto_sync else None,
        calls_last_day=selectors.calls_last_day(), pause=pause, pause_words=selectors.sync_pause_words(pause),
        charts=[bar_chart(series["synced"], title="Records synced per day, last 30 days", colour="#1b7f3b"),
                bar_chart(series["failed"], title="Errors per day, last 30 days", colour="#b00020")],
    )


@require_POST
@xero_staff_required
def connect(request: HttpRequest) -> HttpResponse:
    try:
        return redirect(connect_start(user=request.user))
    except XeroError as error:
        messages.error(request, f"Could not start connecting to Xero: {error}")
        return redirect("xero_sync:settings")


@xero_staff_required
def callback(request: HttpRequest) -> HttpResponse:
    try:
        attempt = connect_complete(
            state=request.GET.get("state", ""), code=request.GET.get("code", ""),
            error=request.GET.get("error", ""), user=request.user,
        )
    except ConnectError as error:
        messages.error(request, str(error))
        return redirect("xero_sync:settings")
    if attempt.completed_connection:
        messages.success(request, f"Connected to {attempt.completed_connection.tenant_name}.")
        return redirect("xero_sync:settings")
    return redirect("xero_sync:choose_tenant", attempt_id=attempt.pk)


@xero_staff_required
def choose_tenant(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = attempt_pending_for(attempt_id=attempt_id, user=request.user)
    if attempt is None:
        raise Http404("No organisation choice is waiting for you here.")
    form = TenantChoiceForm(request.POST or None, tenants=attempt.pending_tenants)
    if request.method == "POST" and form.is_valid():
        try:
            connection = connect_choose_tenant(attempt=attempt, tenant_id=form.cleaned_data["tenant_id"],
                                               user=request.user)
        except ConnectError as error:
            messages.error(request, str(error))
            return redirect("xero_sync:settings")
        messages.success(request, f"Connected to {connection.tenant_name}.")
        return redirect("xero_sync:settings")
    return _page(request, "xero_sync/choose_tenant.html", "Choose the Xero organisation", form=form)


@require_POST
@xero_staff_required
def disconnect_view(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    if connection is None:
        messages.info(request, "There is no Xero connection to disconnect.")
        return redirect("xero_sync:settings")
    result = disconnect(connection=connection)
    messages.success(request, f"Disconnected from {connection.tenant_name}.")
    for problem in result.problems:
        messages.warning(request, f"{problem} Remove the app under Xero's Connected Apps to be sure.")
    return redirect("xero_sync:settings")


@require_POST
@xero_staff_required
def sync_now_view(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    if connection is None:
        messages.error(request, "Connect to Xero first.")
    elif connection.status != connection.Status.ACTIVE:
        messages.error(request, "The Xero connection needs reconnecting first; pending changes are kept.")
    else:
        if sync_now_request(SyncRun.Trigger.MANUAL):
            messages.success(request, "Sync started: the run appears below when it is done.")
        else:
            messages.warning(request, BROKER_DOWN_MESSAGE)
    return redirect("xero_sync:settings")


@require_POST
@xero_staff_required
def chart_refresh(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    if connection is None:
        messages.error(request, "Connect to Xero first.")
        return redirect("xero_sync:settings")
    try:
        connection = configuration.chart_refresh(connection=connection)
    except XeroError as error:
        messages.error(request, f"Could not fetch the accounts from Xero: {error}")
    else:
        messages.success(
            request, f"Fetched {len(connection.accounts_cache)} accounts and "
            f"{len(connection.tax_rates_cache)} tax rates from {connection.tenant_name}.")
    return redirect("xero_sync:settings")
