"""The Xero pages. Thin: parse the request, call a service, render or redirect."""

import re
from functools import wraps

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ecommerce.models import PaymentMethod

from . import selectors
from .charts import bar_chart
from .errors import XeroError
from .forms import NOT_CHOSEN, PaymentMethodConfigForm, SyncSettingsForm, TaxMappingForm, TenantChoiceForm
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
from .wording import counted, problem_rows


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
    """Every code in use on sale lines, the blank one ("no tax code") included, and every code mapped."""
    return sorted(set(configuration.line_tax_codes()) | set(TaxMapping.objects.values_list("tax_code", flat=True)))


def _method_forms(data, methods: QuerySet[PaymentMethod], accounts: list[dict]):
    configs = {config.payment_method_id: config for config in PaymentMethodConfig.objects.all()}
    forms = []
    for method in methods:
        config = configs.get(method.pk)
        initial = {"direction": config.direction if config else NOT_CHOSEN,
                   "xero_account_code": config.xero_account_code if config else ""}
        forms.append((method, PaymentMethodConfigForm(data, prefix=f"method-{method.pk}", initial=initial,
                                                      payment_accounts=accounts)))
    return forms


def _tax_forms(data, tax_types: list[dict]) -> list[TaxMappingForm]:
    """One row per code: on a POST, the rows the page sent (a code that appeared since the page was loaded
    is not in them, and is not touched); otherwise every code in use or mapped."""
    mappings = dict(TaxMapping.objects.values_list("tax_code", "xero_tax_type"))
    if data is None:
        codes = list(enumerate(_tax_codes()))
    else:
        indexes = sorted(int(key.split("-")[1]) for key in data if re.fullmatch(r"tax-\d+-tax_code", key))
        codes = [(index, data[f"tax-{index}-tax_code"]) for index in indexes]
    return [TaxMappingForm(data, prefix=f"tax-{index}", tax_types=tax_types,
                           initial={"tax_code": code, "xero_tax_type": mappings.get(code, "")})
            for index, code in codes]


# The settings page is one form: whichever Save button is pressed, every section on the page is saved
# together, or (when anything is wrong) nothing is, and every entry stays on the page with its error.
SECTION_NAMES = {"sync": "sync settings", "payment_methods": "payment methods", "tax": "tax mapping"}


def _sections_sent(data, method_forms) -> list[str]:
    """The sections whose fields the POST carries: all three from the page; a script may send one."""
    sent = []
    if "debounce_seconds" in data:
        sent.append("sync")
    if any(form.add_prefix("direction") in data for _, form in method_forms):
        sent.append("payment_methods")
    if any(re.fullmatch(r"tax-\d+-tax_code", key) for key in data):
        sent.append("tax")
    return sent


def _save_sections(sent, sync_form, method_forms, tax_forms) -> bool:
    """Save every section sent, in one transaction: one refusal and nothing is stored."""
    failed = False
    with transaction.atomic():
        if "sync" in sent:
            try:
                configuration.sync_settings_update(**sync_form.cleaned_data)
            except ValidationError as error:
                _save_errors(sync_form, error)
                failed = True
        for method, form in method_forms if "payment_methods" in sent else []:
            direction, account = form.cleaned_data["direction"], form.cleaned_data["xero_account_code"]
            if direction == NOT_CHOSEN:
                if account:
                    form.add_error("direction", f"Choose push, pull or neither for {method.name} to keep this account.")
                    failed = True
                continue  # nobody decided yet: left for the checklist to ask
            try:
                configuration.payment_method_configure(payment_method=method, direction=direction,
                                                       account_code=account)
            except ValidationError as error:
                _save_errors(form, error)
                failed = True
        for form in tax_forms if "tax" in sent else []:
            try:
                configuration.tax_mapping_set(**form.cleaned_data)
            except ValidationError as error:
                _save_errors(form, error)
                failed = True
        if failed:
            transaction.set_rollback(True)
    return not failed


@xero_staff_required
def settings_page(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    current = configuration.sync_settings()
    data = request.POST if request.method == "POST" else None
    accounts = configuration.payment_accounts(connection)
    revenue = configuration.revenue_accounts(connection)
    tax_types = configuration.revenue_tax_types(connection)
    methods = PaymentMethod.objects.order_by("name")

    method_forms = _method_forms(data, methods, accounts)
    sent = _sections_sent(data, method_forms) if data is not None else []
    sync_form = SyncSettingsForm(
        data if "sync" in sent else None, revenue_accounts=revenue,
        initial={field: getattr(current, field) for field in (
            "auto_sync", "debounce_seconds", "max_wait_seconds", "default_sales_account_code",
            "shipping_account_code")},
    )
    if "payment_methods" not in sent:
        method_forms = _method_forms(None, methods, accounts)
    tax_forms = _tax_forms(data if "tax" in sent else None, tax_types)

    if sent:
        valid = [sync_form.is_valid() if "sync" in sent else True,
                 *(form.is_valid() for _, form in method_forms if "payment_methods" in sent),
                 *(form.is_valid() for form in tax_forms if "tax" in sent)]
        if all(valid) and _save_sections(sent, sync_form, method_forms, tax_forms):
            names = [SECTION_NAMES[section] for section in sent]
            messages.success(request, f"Saved: {_and_list(names)}.")
            return redirect("xero_sync:settings")
        messages.error(request, "Nothing was saved: please correct the errors below. Everything you entered is "
                                "still on the page.")
    series = selectors.daily_series()
    pause = selectors.sync_pause(connection)
    unmapped = set(configuration.tax_codes_unmapped())

    return _page(
        request, "xero_sync/settings.html", "Xero settings",
        connection=connection, sync_form=sync_form, method_forms=method_forms,
        tax_rows=[(form, configuration.tax_code_name(form["tax_code"].value() or ""),
                   (form["tax_code"].value() or "") in unmapped) for form in tax_forms],
        setup_steps=configuration.setup_checklist(connection),
        chart_known=bool(connection and connection.chart_fetched_at),
        runs=[(run, counted(run.pushed, nothing="-"), counted(run.failed, nothing="-"))
              for run in SyncRun.objects.all()[:10]],
        problems=problem_rows(links_with_problems()[:20]), backlog=outbox_backlog(),
        next_run=outbox_due_at(debounce_seconds=current.debounce_seconds, max_wait_seconds=current.max_wait_seconds)
        if current.auto_sync else None,
        calls_last_day=selectors.calls_last_day(), pause=pause, pause_words=selectors.sync_pause_words(pause),
        charts=[bar_chart(series["synced"], title="Records synced per day, last 30 days", colour="#1b7f3b"),
                bar_chart(series["failed"], title="Errors per day, last 30 days", colour="#b00020")],
    )


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


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
