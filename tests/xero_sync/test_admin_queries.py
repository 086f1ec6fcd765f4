"""Issue 17: the sync's own pages (Xero links, sync runs, the outbox, the settings page and its dashboard)
and `xero_sync status` ask the database a fixed number of times, the same at 10 records as at 200."""

import pytest
from django.urls import reverse

from tests.admin_volume import grow_to, queries_of, queries_of_command
from xero_sync.admin import page_cut
from xero_sync.models import OutboxEntry, SyncRun, XeroLink

pytestmark = pytest.mark.django_db

SMALL, LARGE = 10, 200


def admin_page(name: str, *args, query: str = "") -> str:
    return reverse(f"admin:xero_sync_{name}", args=args) + query


PAGES = [
    pytest.param(lambda: admin_page("xerolink_changelist"), id="xero-links"),
    pytest.param(lambda: admin_page("xerolink_changelist", query="?state__exact=error"), id="xero-links-in-error"),
    pytest.param(lambda: admin_page("xerolink_changelist", query="?kind__exact=sale&xero_status=AUTHORISED"),
                 id="xero-links-of-sales"),
    pytest.param(lambda: admin_page("xerolink_changelist", query="?q=1"), id="xero-links-searched"),
    pytest.param(lambda: admin_page("xerolink_change", XeroLink.objects.latest("pk").pk), id="xero-link"),
    pytest.param(lambda: admin_page("syncrun_changelist"), id="sync-runs"),
    pytest.param(lambda: admin_page("syncrun_change", SyncRun.objects.latest("started_at").pk), id="sync-run"),
    pytest.param(lambda: admin_page("outboxentry_changelist"), id="outbox"),
    pytest.param(lambda: admin_page("outboxentry_change", OutboxEntry.objects.latest("pk").pk), id="outbox-entry"),
    pytest.param(lambda: admin_page("outboxheld_changelist"), id="held-for-other-organisations"),
    pytest.param(lambda: reverse("xero_sync:settings"), id="settings-and-dashboard"),
]


@pytest.mark.parametrize("url", PAGES)
def test_a_sync_page_asks_the_same_queries_at_10_records_as_at_200(admin_client, url):
    grow_to(SMALL)
    at_small = queries_of(admin_client, url())
    grow_to(LARGE)
    assert queries_of(admin_client, url()) == at_small


def test_xero_sync_status_asks_the_same_queries_at_10_records_as_at_200():
    grow_to(SMALL)
    at_small = queries_of_command("xero_sync", "status")
    grow_to(LARGE)
    assert queries_of_command("xero_sync", "status") == at_small


@pytest.mark.parametrize("few_ids", [pytest.param(None, id="sets-read-once"),
                                     pytest.param(3, id="sets-too-large-so-sql")])
@pytest.mark.parametrize("model_name", ["contact", "sale", "receipt", "refund"])
def test_the_xero_filter_and_sort_agree_with_the_column_in_every_state(admin_client, model_name, few_ids,
                                                                        monkeypatch):
    if few_ids is not None:  # as with a backlog of thousands: the states answered in SQL over the sets
        monkeypatch.setattr("xero_sync.admin.FEW_IDS", few_ids)
    # given records in every Xero state (synced, waiting, refused, locked, in conflict, given up, deleted,
    # never sent, not for Xero)
    from django.contrib import admin

    from xero_sync.admin import STATE_LABELS

    grow_to(LARGE)
    model_admin = next(a for m, a in admin.site._registry.items() if m._meta.model_name == model_name)
    shown = model_admin.xero_states(model_admin.model.objects.values_list("pk", flat=True))
    assert len(set(shown.values())) >= 4
    for state in STATE_LABELS:
        # when staff filter the list by a state, then they get exactly the records the column shows so
        filtered = set(model_admin.get_queryset(None).filter(model_admin.xero_state_is(state)).values_list(
            "pk", flat=True))
        assert filtered == {pk for pk, seen in shown.items() if seen == state}, state
    # and sorting by the column groups the records by the state it shows, in order
    column = model_admin.get_list_display(None).index("xero_column") + 1  # the action checkbox is column 0
    for order, descending in ((str(column), False), (f"-{column}", True)):
        # (the list shows 100 to a page: the two pages together hold every record once, in order)
        pages = [admin_client.get(reverse(f"admin:ecommerce_{model_name}_changelist"), {"o": order, "p": page})
                 for page in (1, 2)]
        listed = [row.pk for response in pages for row in response.context["cl"].result_list]
        assert sorted(listed) == sorted(shown), order
        states = [shown[pk] for pk in listed]
        assert states == sorted(states, reverse=descending), order
        # and within a state, newest first (Django's tie-break for a sorted column: the id, descending)
        for state in set(states):
            in_state = [pk for pk in listed if shown[pk] == state]
            assert in_state == sorted(in_state, reverse=True), (order, state)


@pytest.mark.parametrize(("sizes", "first", "last", "cut"), [
    ([3, 0, 5], 0, 100, [(0, 0, 3), (2, 0, 5)]),  # a page longer than the list: every group, empty ones left out
    ([3, 4, 5], 0, 2, [(0, 0, 2)]),  # inside the first group
    ([3, 4, 5], 2, 8, [(0, 2, 3), (1, 0, 4), (2, 0, 1)]),  # across three groups
    ([3, 4, 5], 3, 7, [(1, 0, 4)]),  # exactly one group, starting on its first row
    ([3, 4, 5], 10, 20, [(2, 3, 5)]),  # the last page, short
    ([3, 4, 5], 12, 20, []),  # past the end
])
def test_a_page_of_groups_is_cut_at_the_right_rows_of_each(sizes, first, last, cut):
    assert page_cut(sizes, first, last) == cut
