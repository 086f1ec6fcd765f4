"""The Books check page: thin, like the other Xero pages (xero_sync.views): read the month asked for, call
the books check service, render; "Check against Xero now" refreshes one month from Xero first."""

import datetime

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from .charts import bar_chart
from .services.books_check import MonthCheck, books_check, months_back
from .services.books_refresh import BooksRefreshRefused, books_refresh_month
from .services.connection import connection_current
from .views import _page, xero_staff_required

MONTHS_SHOWN = 12


def parse_month(value: str | None) -> datetime.date | None:
    """YYYY-MM as the first day of that month; None when not given; Http404 for anything else."""
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise Http404(f"{value!r} is not a month: give it as YYYY-MM, e.g. 2026-03.") from None


@xero_staff_required
def books_check_page(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    chosen = parse_month(request.GET.get("month"))
    rows, chosen_checks = [], []
    if connection is not None:
        shown = months_back(MONTHS_SHOWN)
        for month in shown:
            # a month without sales still has its row: nothing to differ is agreement too
            checks = books_check(tenant_id=connection.tenant_id, month=month) or [
                MonthCheck(month=month, currency=settings.SHOP_CURRENCY)]
            rows.extend(checks)
            if month == chosen:
                chosen_checks = checks
        if chosen is not None and chosen not in shown:
            chosen_checks = books_check(tenant_id=connection.tenant_id, month=chosen)
    series = {}
    for row in rows:
        series[row.month] = series.get(row.month, 0) + len(row.unexplained)
    chart = bar_chart(sorted(series.items()), title="Unexplained differences per month", colour="#ba2121") \
        if series else None
    return _page(request, "xero_sync/books_check.html", "Books check", connection=connection, rows=rows,
                 chosen=chosen, chosen_checks=chosen_checks, chart=chart)


@require_POST
@xero_staff_required
def books_check_fresh(request: HttpRequest) -> HttpResponse:
    month = parse_month(request.POST.get("month"))
    if month is None:
        raise Http404("Say which month to check against Xero.")
    try:
        run = books_refresh_month(month=month)
    except BooksRefreshRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Fetched {month:%B %Y} from Xero again ({run.calls} call"
                                  f"{'' if run.calls == 1 else 's'}); the check below is of Xero as it is now.")
    return redirect(f"{reverse('xero_sync:books_check')}?month={month:%Y-%m}")
