"""The Books check page: thin, like the other Xero pages (xero_sync.views). The twelve months' table shows
the figures of the last check (the daily run's, or staff's "Check again"); a month's own page checks that
month now; "Check against Xero now" first fetches the month from Xero again."""

import datetime

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from .charts import bar_chart
from .models import BooksCheckMonth
from .services.books_check import books_check_store, months_back
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


def _months_table(tenant_id) -> list[BooksCheckMonth]:
    """The last twelve months as last checked, newest first; a month never checked is checked now (once)."""
    shown = months_back(MONTHS_SHOWN)
    stored = list(BooksCheckMonth.objects.filter(tenant_id=tenant_id, month__gte=shown[-1]))
    unchecked = [month for month in shown if month not in {row.month for row in stored}]
    if unchecked:
        books_check_store(tenant_id=tenant_id, months=unchecked)
        stored = list(BooksCheckMonth.objects.filter(tenant_id=tenant_id, month__gte=shown[-1]))
    by_month = {}
    for row in stored:
        by_month.setdefault(row.month, []).append(row)
    return [row for month in shown for row in by_month.get(month, [])]


@xero_staff_required
def books_check_page(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    chosen = parse_month(request.GET.get("month"))
    rows, chosen_checks, chart = [], [], None
    if connection is not None:
        if chosen is not None:
            # checked now, and kept: the table then shows this month as it is
            chosen_checks = books_check_store(tenant_id=connection.tenant_id, months=[chosen])
        rows = _months_table(connection.tenant_id)
        per_month = {}
        for row in rows:
            per_month[row.month] = per_month.get(row.month, 0) + row.unexplained
        chart = bar_chart(sorted(per_month.items()), title="Unexplained differences per month", colour="#ba2121") \
            if per_month else None
    return _page(request, "xero_sync/books_check.html", "Books check", connection=connection, rows=rows,
                 chosen=chosen, chosen_checks=chosen_checks, chart=chart)


@require_POST
@xero_staff_required
def books_check_again(request: HttpRequest) -> HttpResponse:
    connection = connection_current()
    if connection is not None:
        books_check_store(tenant_id=connection.tenant_id, months=months_back(MONTHS_SHOWN))
        messages.success(request, "Checked the last 12 months again against the last pull's copies of Xero's books.")
    return redirect(reverse("xero_sync:books_check"))


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
