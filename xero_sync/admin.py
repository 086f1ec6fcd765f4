"""The sync's own records in the admin: each record's Xero state (with requeue), runs, the outbox."""

import uuid
from functools import cached_property

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import connection
from django.db.models import Case, CharField, Exists, Expression, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from ecommerce.admin import (
    FEW_IDS,
    ContactAdmin,
    IndexedValuesFilter,
    ReadOnlyAdmin,
    ReceiptAdmin,
    RefundAdmin,
    SaleAdmin,
    ids_as_parameter,
)
from ecommerce.models import Contact, LineAmountType, Receipt, Refund, Sale

from .models import OutboxEntry, OutboxHeld, RecordKind, SyncRun, TaxMapping, XeroLink
from .selectors import contacts_for_xero, receipts_for_xero, refunds_for_xero, sales_for_xero
from .services.configuration import DEMO_REFERENCE_PREFIX, demo_data_withheld
from .services.connection import connection_current
from .services.links import link_advice, links_requeue, links_send_now, receipts_xero_refuses, xero_web_url
from .services.unlinked import XERO_MODELS, unlinked_ids
from .tasks import BROKER_DOWN_MESSAGE, sync_now_request
from .wording import counted, record_names, said_by

LOCAL_ADMIN = {"contact": "admin:ecommerce_contact_change", "sale": "admin:ecommerce_sale_change",
               "receipt": "admin:ecommerce_receipt_change", "refund": "admin:ecommerce_refund_change"}


class XeroLinkChangeList(ChangeList):
    """The page of links, named as staff know their records and with what waits to be sent, in a few
    queries for the whole page (one per kind on it, one for the outbox)."""

    def get_results(self, request):
        super().get_results(request)
        links = list(self.result_list)
        names = record_names(links)
        waiting = set(OutboxEntry.objects.filter(local_id__in={link.local_id for link in links}).values_list(
            "kind", "local_id")) if links else set()
        for link in links:
            link.staff_name = names[link.pk]
            link.waiting = (str(link.kind), link.local_id) in waiting


@admin.register(XeroLink)
class XeroLinkAdmin(ReadOnlyAdmin):
    list_display = ["record", "state_shown", "xero_status", "xero_id", "attempts",
                    "last_pushed_at", "short_error"]
    list_filter = ["state", "kind", ("xero_status", IndexedValuesFilter)]
    search_fields = ["xero_key", "xero_name", "last_error", "=xero_id"]
    actions = ["requeue"]
    ordering = ["-last_pushed_at", "-id"]
    list_per_page = 50  # a page of refused records with their words stays a screenful or two

    def get_changelist(self, request, **kwargs):
        return XeroLinkChangeList

    def search_q(self, term: str) -> Q:
        """As search_fields say; the ids of the matches are found once (see SubquerySearchAdmin)."""
        matches = Q(xero_key__icontains=term) | Q(xero_name__icontains=term) | Q(last_error__icontains=term)
        try:
            return matches | Q(xero_id=uuid.UUID(term))
        except ValueError:
            return matches

    @admin.display(description="Record", ordering="local_id")
    def record(self, link: XeroLink):
        name = getattr(link, "staff_name", None) or record_names([link])[link.pk]
        try:
            url = reverse(LOCAL_ADMIN[link.kind], args=[link.local_id])
        except (KeyError, NoReverseMatch):
            return f"{link.get_kind_display()} {name}"
        return format_html('{} <a href="{}">{}</a>', link.get_kind_display(), url, name)

    @admin.display(description="State", ordering="state")
    def state_shown(self, link: XeroLink) -> str:
        """As the record's own page says it: a synced record with a change still to send is pending."""
        waiting = getattr(link, "waiting", None)
        if waiting is None:
            waiting = OutboxEntry.objects.filter(kind=link.kind, local_id=link.local_id).exists()
        return STATE_LABELS[shown_state(link.state, waiting=waiting, eligible=True)]

    @admin.display(description="Last error")
    def short_error(self, link: XeroLink) -> str:
        if not link.last_error:
            return ""
        return f"{said_by(link.error_by)}: {link.last_error[:160]}"

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
                 "locked": "#b00020", "conflict": "#b00020", "dead": "#b00020", "deleted": "#b00020",
                 NOT_ELIGIBLE: "#666"}


def _local(moment) -> str:
    """A time as the rest of the admin shows it: in the shop's time zone."""
    return date_format(localtime(moment), "DATETIME_FORMAT") if moment else "-"


PROBLEM_STATES = ("error", "locked", "conflict", "dead", "deleted")


def xero_eligible(kind: str, tenant_id) -> Q:
    """Who goes to Xero, the push's own answer (xero_sync.selectors): what the column calls "Not for
    Xero yet" is what the push leaves out."""
    if kind == RecordKind.CONTACT:
        return contacts_for_xero(tenant_id)
    if kind == RecordKind.SALE:
        return sales_for_xero()
    if kind == RecordKind.REFUND:
        return refunds_for_xero(tenant_id)
    return receipts_for_xero()


def state_set_limit() -> int:
    """The most records one of XeroStateSets' small sets may hold to be listed by id: a backlog (the first
    sync of a shop's history has every record waiting) beyond it is answered in SQL over the sets, which
    took 1.7 s (sorted) and 2.6 s (pending) at 100,000 sales. On PostgreSQL 50,000, as the ids travel as
    one array literal; SQLite takes at most 32,766 parameters in a query."""
    return FEW_IDS * 5 if connection.vendor == "postgresql" else FEW_IDS


class XeroStateSets:
    """The records of one kind in each Xero state, from a few small sets rather than a test of every row.

    The small sets: the links not synced (problem states, on their way, deleted: read from the small
    xerolink_unsettled index), the outbox, and the records for Xero with no link yet (of the records with
    no link, which PostgreSQL's triggers keep as a set: xero_sync.services.unlinked). Two states may hold
    most of a table and are tests instead: "Not for Xero yet" (no link and not for Xero: a shop's cash
    receipts, its contacts who never bought) and synced (a link, and in none of the small sets).

    With `read_once`, the small sets are read once and, when none is too large (state_set_limit), each
    record in them is given the state the column shows (shown_state, the column's own rule) in Python: a
    filter is then `id IN (the ids in that state)`, an index probe per id, and the list sorted by the column
    is put together from those lists (XeroStateAdminMixin.xero_sorted_page). Otherwise (a large backlog)
    the same answers are SQL over the sets as hashed subqueries. Per-row subqueries (the column's own
    Case, OR-ed EXISTS) took seconds at 100,000 sales; OR-ed hashed sets still read every row (~50 ms per
    query); listing 50,000 cash receipts as "not for Xero yet" by their ids took over 2 s."""

    def __init__(self, kind: str, model, tenant_id, *, read_once: bool = False):
        self.kind, self.model, self.tenant_id, self.read_once = kind, model, tenant_id, read_once
        self.links = XeroLink.objects.filter(tenant_id=tenant_id, kind=kind)
        self.waiting = OutboxEntry.objects.filter(kind=kind).values_list("local_id", flat=True)
        kept = unlinked_ids(kind, tenant_id)
        if kept is not None:  # the set the triggers keep: a range of its index, as long as the set
            self.unlinked = kept
            self.linked = ~Q(pk__in=kept)
        else:  # an anti-join of the whole table against the links (~50 ms at 100,000 sales)
            self.linked = Q(Exists(self.links.filter(local_id=OuterRef("pk"))))
            # No ordering: the model's own (newest first) made the anti-join a nested loop along the date index.
            self.unlinked = model.objects.filter(~self.linked).order_by().values_list("pk", flat=True)
        # The unlinked that go to Xero, as a set of its own: the eligibility test nested in the sort key
        # made PostgreSQL hash every confirmed sale for it (~0.9 s at 100,000 sales), even for no row.
        self.unlinked_eligible = model.objects.filter(pk__in=self.unlinked).filter(self.eligible()).order_by(
            ).values_list("pk", flat=True)

    def eligible(self) -> Q:
        return xero_eligible(self.kind, self.tenant_id)

    def not_for_xero(self) -> Q:
        """No link, and not for Xero. The records with no link are read once when they are few; else (a
        shop's cash receipts, its contacts who never bought: tens of thousands) they stay a subquery (the
        kept set on PostgreSQL, the anti-join elsewhere), which PostgreSQL hashes once per query."""
        shown, unlinked_eligible = self._states
        if shown is None:
            return Q(pk__in=self._unlinked()) & ~Q(pk__in=self.unlinked_eligible)
        if self._unlinked_ids is not None:
            return Q(pk__in=ids_as_parameter(set(self._unlinked_ids) - unlinked_eligible))
        return Q(pk__in=self.unlinked) & ~Q(pk__in=ids_as_parameter(unlinked_eligible))

    @cached_property
    def _unlinked_ids(self) -> list | None:
        """The ids of the records with no link, when they are few and the sets are read once."""
        return self._few_ids(self.unlinked) if self.read_once else None

    def _unlinked(self):
        """The records with no link: their ids when they are few and the sets are read once, else the
        subquery."""
        return self.unlinked if self._unlinked_ids is None else ids_as_parameter(self._unlinked_ids)

    def shown(self) -> dict | None:
        """{record id: the state the column shows} for the records in the small sets (neither synced nor
        "not for Xero yet"), when none is too large; None when one is (then the SQL answers stand)."""
        return self._states[0]

    @cached_property
    def _states(self) -> tuple[dict | None, set]:
        """(shown's answer, the records with no link that go to Xero), read once; (None, none) unless the
        sets are read once and none is too large."""
        if self.read_once:
            most = state_set_limit()
            unsettled = list(self.links.exclude(state=XeroLink.State.SYNCED).order_by().values_list(
                "local_id", "state")[:most + 1])
            waiting = list(self.waiting.order_by()[:most + 1])
            unlinked_eligible = list(self.model.objects.filter(pk__in=self._unlinked()).filter(
                self.eligible()).order_by().values_list("pk", flat=True)[:most + 1])
            if max(len(unsettled), len(waiting), len(unlinked_eligible)) <= most:
                link_state, waiting, unlinked_eligible = dict(unsettled), set(waiting), set(unlinked_eligible)
                # Of the changes waiting, those of a record with a synced link (the others have an unsettled
                # link, or no link: for Xero, pending; else "not for Xero yet", not_for_xero's).
                linked_waiting = set(self.links.filter(local_id__in=ids_as_parameter(
                    waiting - link_state.keys() - unlinked_eligible)).values_list("local_id", flat=True))
                shown = {}
                for pk in link_state.keys() | waiting | unlinked_eligible:
                    if pk in link_state:
                        state = link_state[pk]
                    elif pk in unlinked_eligible:
                        state = None
                    elif pk in linked_waiting:
                        state = XeroLink.State.SYNCED
                    else:
                        continue
                    shown[pk] = shown_state(state, waiting=pk in waiting, eligible=pk in unlinked_eligible)
                return shown, unlinked_eligible
        return None, set()

    def records_in(self, state: str) -> Q:
        """The records the column shows in `state`."""
        pk = "pk__in"
        if state in PROBLEM_STATES:  # the one set it needs
            return Q(**{pk: self._few(self.in_state(state))})
        if state == NOT_ELIGIBLE:
            return self.not_for_xero()
        shown = self.shown()
        if shown is not None:
            if state == XeroLink.State.SYNCED:
                return self.linked & ~Q(pk__in=ids_as_parameter(shown))
            return Q(pk__in=ids_as_parameter(pk for pk, seen in shown.items() if seen == state))
        if state == PENDING:
            return (Q(**{pk: self.in_state(XeroLink.State.PENDING, XeroLink.State.IN_FLIGHT)})
                    | (Q(**{pk: self.waiting}) & ~Q(**{pk: self.in_state(*PROBLEM_STATES)}) & ~Q(**{pk: self.unlinked}))
                    | Q(**{pk: self.unlinked_eligible}))
        if state != XeroLink.State.SYNCED:
            return Q(pk__in=[])  # "Sending" shows as pending: no record is listed under it
        # synced: linked, nothing unsettled about the link, nothing waiting
        unsettled = self.links.exclude(state=state).values_list("local_id", flat=True)
        return self.linked & ~Q(**{pk: unsettled}) & ~Q(**{pk: self.waiting})

    def _few(self, values):
        """A set read once as a list when it is small and the sets are read once; else its subquery."""
        ids = self._few_ids(values) if self.read_once else None
        return values if ids is None else ids_as_parameter(ids)

    @staticmethod
    def _few_ids(values) -> list | None:
        ids = list(values.order_by()[:FEW_IDS + 1])
        return ids if len(ids) <= FEW_IDS else None

    def in_state(self, *states):
        return self.links.filter(state__in=states).values_list("local_id", flat=True)

    def order(self) -> Case:
        """The column's state as a sort key in SQL, the same answer as shown_state: for a list too large to
        be put together from the small sets (see XeroStateAdminMixin.xero_sorted_page)."""
        # One hashed set per problem state, not the link's state read per row: a correlated subquery in a
        # sort key made the sort of 50,000 contacts take over a second (EXPLAIN: SubPlan per row).
        return Case(
            *(When(pk__in=self.in_state(state), then=Value(state)) for state in PROBLEM_STATES),
            When(pk__in=self.in_state(XeroLink.State.PENDING, XeroLink.State.IN_FLIGHT), then=Value(PENDING)),
            When(pk__in=self.unlinked_eligible, then=Value(PENDING)),
            When(pk__in=self.unlinked, then=Value(NOT_ELIGIBLE)),
            When(pk__in=self.waiting, then=Value(PENDING)),
            When(pk__in=self.in_state(XeroLink.State.DELETED), then=Value(XeroLink.State.DELETED)),
            default=Value(XeroLink.State.SYNCED),
        )


def shown_state(link_state: str | None, *, waiting: bool, eligible: bool) -> str:
    """What the Xero column says of a record: its link's state, except that a record with a change still
    to send reads pending, and one without a link reads pending or "Not for Xero yet" as the push would
    take it or not. XeroStateSets answers the same question in SQL, for sorting and filtering."""
    if link_state in PROBLEM_STATES:
        return link_state
    if link_state is None:
        return PENDING if eligible else NOT_ELIGIBLE
    if waiting or link_state == XeroLink.State.IN_FLIGHT:
        return PENDING
    return link_state


def page_cut(sizes: list[int], first: int, last: int) -> list[tuple[int, int, int]]:
    """Where the rows [first, last) of a list fall when it is groups of these sizes one after another: for
    each group the page reaches, in order, (its index, the first row, the row after the last) within it."""
    cut, position = [], 0
    for index, size in enumerate(sizes):
        start, stop = max(first - position, 0), min(last - position, size)
        position += size
        if start < stop:
            cut.append((index, start, stop))
    return cut


class XeroChangeList(ChangeList):
    """A changelist whose page of records gets its Xero figures in a few queries, once it is read."""

    def get_results(self, request):
        super().get_results(request)  # counts; the page itself (result_list) is not read yet
        self.result_list = self.model_admin.xero_sorted_page(self.queryset, self.result_list, self.result_count)
        self.model_admin.xero_fill(self.result_list)  # evaluates the page once; the template reuses it


class XeroStateOrder(Expression):
    """The Xero column's sort key (XeroStateSets.order), built when a query sorted by it is compiled: what
    makes the column sortable in the admin, and the sort of a list xero_sorted_page cannot put together."""

    def __init__(self, kind: str):
        super().__init__(output_field=CharField())
        self.kind = kind

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        connection = connection_current()
        sets = XeroStateSets(self.kind, XERO_MODELS[self.kind], connection.tenant_id if connection else None)
        return sets.order().resolve_expression(query, allow_joins, reuse, summarize, for_save)

    def __eq__(self, other):
        return isinstance(other, XeroStateOrder) and other.kind == self.kind

    def __hash__(self):
        return hash((type(self), self.kind))


class XeroStateFilter(admin.SimpleListFilter):
    title = "Xero"
    parameter_name = "xero"

    def __init__(self, request, params, model, model_admin):
        self.model_admin = model_admin
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(state, STATE_LABELS[state]) for state in (
            "synced", "pending", "error", "locked", "conflict", "dead", "deleted", NOT_ELIGIBLE)]

    def queryset(self, request, queryset):
        if self.value() not in STATE_LABELS:
            return queryset
        return queryset.filter(self.model_admin.xero_state_is(self.value()))


class XeroStateAdminMixin:
    """Adds to a shop admin: a Xero column and filter, a link into Xero, "Send to Xero now" (which each
    admin lists in its `actions`), and the record's Xero state and history on its page.

    At 100,000 records (issue 17): the column's figures are read for the page's rows only (xero_fill); the
    filter and the sort by the column come from XeroStateSets (records_in, xero_sorted_page), whose records
    with no link are the set PostgreSQL's triggers keep (xero_sync.services.unlinked). What still reads a
    whole table is the list's COUNT, as on any admin list, and elsewhere than PostgreSQL the anti-join
    finding the records with no link."""

    xero_kind: str

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "xero_kind", None):
            # Each admin sorts its column by its own kind's key (an expression, declared once per class).
            def xero_column(self, obj):
                return XeroStateAdminMixin.xero_state_label(self, obj)

            cls.xero_column = admin.display(description="Xero", ordering=XeroStateOrder(cls.xero_kind))(xero_column)

    def xero_eligible(self, tenant_id) -> Q:
        return xero_eligible(self.xero_kind, tenant_id)

    @staticmethod
    def _tenant():
        connection = connection_current()
        return connection.tenant_id if connection else None

    def xero_state_is(self, state: str) -> Q:
        """The records the column shows in this state (see XeroStateSets: the column's own Case would be
        evaluated for every row of the table)."""
        return XeroStateSets(self.xero_kind, self.model, self._tenant(), read_once=True).records_in(state)

    def get_changelist(self, request, **kwargs):
        return XeroChangeList

    def xero_sorted_page(self, listed: QuerySet, page: QuerySet, count: int) -> QuerySet:
        """The page of `listed` (filtered and sorted, `count` rows) that `page` slices, put together from the
        small sets when the list is sorted by the Xero column; else `page` as it is.

        Sorting in SQL evaluates the state of every row of the table (~135 ms at 100,000 sales, growing with
        it). Instead: the records in the small sets are read in the list's own order (one query by their
        ids) and grouped by the state they show; the two large states, "not for Xero yet" (counted) and
        synced (the rest), are slices in the list's order; the page is cut from the states in the column's
        order, and read in one query."""
        ordering = page.query.order_by
        if not ordering or not isinstance(getattr(ordering[0], "expression", None), XeroStateOrder):
            return page
        sets = XeroStateSets(self.xero_kind, self.model, self._tenant(), read_once=True)
        shown = sets.shown()
        if shown is None:
            return page  # a large backlog: the SQL sort key
        rest = listed.order_by(*ordering[1:])
        by_state = {state: [] for state in sorted(STATE_LABELS)}
        for pk in rest.filter(pk__in=ids_as_parameter(shown)).values_list("pk", flat=True):
            by_state[shown[pk]].append(pk)
        not_for_xero = sets.not_for_xero()  # (asked once: the rule reads the connection)
        large = {NOT_ELIGIBLE: rest.filter(not_for_xero),
                 XeroLink.State.SYNCED: rest.filter(sets.records_in(XeroLink.State.SYNCED))}
        sizes = {state: len(ids) for state, ids in by_state.items()}
        sizes[NOT_ELIGIBLE] = large[NOT_ELIGIBLE].count()
        sizes[XeroLink.State.SYNCED] = count - sum(sizes[state] for state in sizes if state != XeroLink.State.SYNCED)
        states = sorted(sizes, reverse=ordering[0].descending)
        on_page, block, within = Q(), [], []
        for rank, start, stop in page_cut([sizes[state] for state in states], page.query.low_mark,
                                          page.query.high_mark or count):
            state = states[rank]
            if state in large:
                on_page |= Q(pk__in=large[state].values("pk")[start:stop])
                if state == NOT_ELIGIBLE:
                    block.append(When(not_for_xero, then=Value(rank)))
            else:
                ids = by_state[state][start:stop]
                on_page |= Q(pk__in=ids)
                block.append(When(pk__in=ids, then=Value(rank)))
                within += [When(pk=pk, then=Value(index)) for index, pk in enumerate(ids)]
        # Each row's place: its state's rank, then its place in the order its small set was found, then (the
        # large states' rows) the list's own order. (A Case without a When would be a bare number, which
        # ORDER BY takes for a column's position: each is left out when it has none.)
        if not on_page:
            return listed.none()
        keys = []
        if block:
            keys.append(Case(*block, default=Value(states.index(XeroLink.State.SYNCED))))
        if within:
            keys.append(Case(*within, default=Value(0)))
        return listed.filter(on_page).order_by(*keys, *ordering[1:])

    def xero_fill(self, records) -> None:
        """Give each record its Xero figures (xero_state_shown, xero_link_id, xero_link_error, ...), for
        the whole page at once: three or four queries by the page's ids, however long the table is.

        Not SQL annotations: PostgreSQL evaluated those for every row of the table whenever the list was
        sorted by anything but an index (a second at 50,000 contacts)."""
        records = list(records)
        if not records:
            return
        tenant = self._tenant()
        ids = [record.pk for record in records]
        links = {link.local_id: link for link in XeroLink.objects.filter(
            tenant_id=tenant, kind=self.xero_kind, local_id__in=ids).only(
            "local_id", "state", "xero_id", "last_error", "error_by")}
        waiting = set(OutboxEntry.objects.filter(kind=self.xero_kind, local_id__in=ids).values_list(
            "local_id", flat=True))
        # Asked for the whole page (only the unlinked need it), so a page costs the same queries every time.
        eligible = set(self.model._default_manager.filter(pk__in=ids).filter(
            self.xero_eligible(tenant)).values_list("pk", flat=True))
        invoices = {}
        if self.xero_kind == RecordKind.RECEIPT:  # a payment is seen on its invoice in Xero
            invoices = dict(XeroLink.objects.filter(tenant_id=tenant, kind=RecordKind.SALE, local_id__in={
                record.sale_id for record in records}).values_list("local_id", "xero_id"))
        for record in records:
            link = links.get(record.pk)
            record.xero_tenant = tenant
            record.xero_link_state = link.state if link else None
            record.xero_link_id = link.xero_id if link else None
            record.xero_link_error = link.last_error if link else ""
            record.xero_link_error_by = link.error_by if link else ""
            record.xero_invoice_id = invoices.get(getattr(record, "sale_id", None))
            record.xero_waiting = record.pk in waiting
            record.xero_state_shown = shown_state(record.xero_link_state, waiting=record.xero_waiting,
                                                  eligible=record.pk in eligible)

    def xero_states(self, ids) -> dict:
        """The state the column shows for each of these records."""
        records = list(self.model._default_manager.filter(pk__in=ids))
        self.xero_fill(records)
        return {record.pk: record.xero_state_shown for record in records}

    def get_list_display(self, request):
        return [*super().get_list_display(request), "xero_column"]

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), XeroStateFilter]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "xero_panel"]

    def get_fieldsets(self, request, obj=None):
        # An admin without fieldsets of its own (receipts) lists every read-only field in its one fieldset,
        # the panel included: it is shown once, in its own, and only for a record that exists.
        fieldsets = [(name, {**options, "fields": [field for field in options["fields"] if field != "xero_panel"]})
                     for name, options in super().get_fieldsets(request, obj)]
        return [*fieldsets, ("Xero", {"fields": ["xero_panel"]})] if obj else fieldsets

    def _url(self, obj) -> str | None:
        if self.xero_kind not in (RecordKind.CONTACT, RecordKind.SALE, RecordKind.RECEIPT, RecordKind.REFUND):
            return None  # xero_web_url knows where Xero shows contacts, invoices, payments and credit notes
        return xero_web_url(kind=self.xero_kind, xero_id=getattr(obj, "xero_link_id", None),
                            tenant_id=getattr(obj, "xero_tenant", None), invoice_xero_id=getattr(obj, "xero_invoice_id", None))

    def xero_state_label(self, obj):
        state = getattr(obj, "xero_state_shown", NOT_ELIGIBLE)
        url = self._url(obj)
        label = format_html('<span class="xero-state xero-{}" style="color:{}">{}</span>', state,
                            STATE_COLOURS.get(state, "#333"), STATE_LABELS.get(state, state))
        if state in ("error", "locked", "conflict", "dead") and getattr(obj, "xero_link_error", ""):
            words = f"{said_by(obj.xero_link_error_by)}: {obj.xero_link_error}"
            label = format_html('{}<br><small class="xero-error">{}</small>', label,
                                words if len(words) <= 140 else words[:139] + "…")
        elif state == NOT_ELIGIBLE:
            label = format_html('{} <small class="xero-why">({})</small>', label, not_for_xero_reason(self.xero_kind, obj))
        return format_html('{} <a class="xero-open" href="{}" target="_blank" rel="noopener">open in Xero</a>',
                           label, url) if url else label

    @admin.display(description="Xero")
    def xero_panel(self, obj):
        if obj.pk is None:
            return "-"
        annotated = self.model._default_manager.filter(pk=obj.pk).first()
        if annotated is not None:
            self.xero_fill([annotated])
        if annotated is None or annotated.xero_tenant is None:
            return "Not connected to Xero."
        link = XeroLink.objects.filter(tenant_id=annotated.xero_tenant, kind=self.xero_kind, local_id=obj.pk).first()
        rows = [("State", STATE_LABELS.get(annotated.xero_state_shown, annotated.xero_state_shown))]
        if annotated.xero_state_shown == NOT_ELIGIBLE:
            rows.append(("Why", not_for_xero_reason(self.xero_kind, annotated)))
        rows += [(heading, words) for heading, words in self.xero_warnings(annotated, link)]
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
                rows += [(said_by(link.error_by), link.last_error), ("What to do", link_advice(link))]
        parts = self.xero_parts(annotated.xero_tenant, obj)
        for heading, part in parts:
            words = STATE_LABELS.get(part.state, part.state) + (f" (Xero id {part.xero_id})" if part.xero_id else "")
            rows.append((heading, words))
            if part.last_error:
                rows += [(said_by(part.error_by), part.last_error), ("What to do", link_advice(part))]
        history_links = [found for found in [link, *(part for _, part in parts)] if found]
        events = sorted((event for found in history_links for event in found.events.all()[:20]),
                        key=lambda event: event.at, reverse=True)[:20]
        history = format_html_join("", "<li>{} — {}: {}</li>", (
            (_local(event.at), event.action, event.detail) for event in events))
        table = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        return format_html('<table class="xero-panel">{}</table><p><strong>History</strong></p><ul>{}</ul>', table,
                           history or format_html("<li>{}</li>", "Nothing yet."))

    def xero_warnings(self, record, link: XeroLink | None) -> list[tuple[str, str]]:
        """What Xero will do with this record's next change, said before it is made: (heading, words)."""
        return []

    def xero_parts(self, tenant_id, record) -> list[tuple[str, XeroLink]]:
        """The record's other links, when it is more than one thing in Xero: (heading, link)."""
        return []

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


def not_for_xero_reason(kind: str, record) -> str:
    """Why the push leaves this record out (selectors' answer, in words): from the record's own fields and
    those the list already reads with it (a receipt's sale and method), so nothing is asked per row."""
    withheld = demo_data_withheld()
    if kind == RecordKind.SALE:
        if record.status == Sale.Status.DRAFT:
            return "a draft: it goes once confirmed"
        if record.status == Sale.Status.CANCELLED:
            return "cancelled before it reached Xero, with no money through Xero: kept on the website"
        if withheld and record.reference.startswith(DEMO_REFERENCE_PREFIX):
            return "demo data, kept on the website"
    if kind == RecordKind.RECEIPT:
        if withheld and record.sale.reference.startswith(DEMO_REFERENCE_PREFIX):
            return "a demo sale's, kept on the website"
        return f"{record.payment_method} is not pushed to Xero (Xero settings, Payment methods)"
    if kind == RecordKind.CONTACT:
        return "no confirmed sale yet: a contact goes with its first"
    if kind == RecordKind.REFUND:
        if withheld and record.sale.reference.startswith(DEMO_REFERENCE_PREFIX):
            return "a demo sale's, kept on the website"
        return "its sale was cancelled before it reached Xero, with no money through Xero: kept on the website"
    return "not sent to Xero"


PAID_IN_XERO = "PAID"


def unmapped_tax_codes(sale: Sale) -> list[str]:
    """The sale's tax codes with no Xero tax type: said when it is saved, not found out at the next sync.
    Matched exactly, as the push matches them ('gst' is not 'GST')."""
    if sale.line_amount_type == LineAmountType.NO_TAX or sale.status == Sale.Status.CANCELLED:
        return []
    codes = set(sale.lines.values_list("tax_code", flat=True))
    mapped = set(TaxMapping.objects.filter(tax_code__in=codes).exclude(xero_tax_type="").values_list(
        "tax_code", flat=True))
    return sorted(codes - mapped)


def unmapped_words(sale: Sale, codes: list[str]) -> str:
    names = ", ".join(f"'{code}'" if code else "no tax code" for code in codes)
    return (f"{sale.number} cannot reach Xero until its tax code {names} is mapped to a Xero tax type: map it "
            "on the Xero settings page (its tax mapping lists it), or correct the lines' code. "
            "Codes are matched exactly.")


def paid_in_xero_words(sale: Sale) -> str:
    return (f"Xero has {sale.number}'s invoice as paid, and Xero refuses changes to a paid invoice: a change "
            "saved here stays on the website and the sale shows as refused by Xero. To give money back or "
            "correct what was sold, use “Record a refund” on this page (Xero gets a credit note). "
            "Paid and Due below count the website's receipts and the payments pulled from Xero; while a "
            "change waits unsent they may differ from Xero's PAID.")


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
        codes = unmapped_tax_codes(form.instance)
        if codes:
            self.message_user(request, unmapped_words(form.instance, codes), messages.WARNING)

    def _xero_link(self, sale_id) -> XeroLink | None:
        connection = connection_current()
        if connection is None:
            return None
        return XeroLink.objects.filter(tenant_id=connection.tenant_id, kind=RecordKind.SALE, local_id=sale_id).first()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Said before saving: a change to an invoice Xero has as paid is refused there (docs/xero-api.md).
        if request.method == "GET":
            link = self._xero_link(object_id) if str(object_id).isdigit() else None
            sale = Sale.objects.filter(pk=object_id).first() if link else None
            if sale and link.xero_status == PAID_IN_XERO and sale.status != Sale.Status.CANCELLED:
                self.message_user(request, paid_in_xero_words(sale), messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        link = self._xero_link(object_id) if str(object_id).isdigit() else None
        if link and link.xero_id:
            extra_context = {**(extra_context or {}), "xero_keeps": (
                f"This sale is in Xero (invoice {link.xero_key or 'of this sale'}). Deleting it here does not "
                "delete it there: Xero keeps the invoice, and its payments, as they are. To undo a sale, "
                "cancel it instead (Xero voids an unpaid invoice), or record a refund.")}
        return super().delete_view(request, object_id, extra_context)

    def xero_warnings(self, record, link):
        warnings = []
        if link and link.xero_status == PAID_IN_XERO and record.status != Sale.Status.CANCELLED:
            warnings.append(("Before you change it", paid_in_xero_words(record)))
        codes = unmapped_tax_codes(record)
        if codes:
            warnings.append(("Tax mapping", unmapped_words(record, codes)))
        return warnings


class XeroReceiptAdmin(XeroStateAdminMixin, ReceiptAdmin):
    xero_kind = RecordKind.RECEIPT
    actions = [*ReceiptAdmin.actions, "send_to_xero_now"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _warn_of_receipts_xero_refuses(self, request, [obj])


class XeroRefundAdmin(XeroStateAdminMixin, RefundAdmin):
    xero_kind = RecordKind.REFUND
    actions = [*RefundAdmin.actions, "send_to_xero_now"]
    PARTS = {RecordKind.ALLOCATION: "Allocation to the invoice", RecordKind.REFUND_PAYMENT: "Refund payment"}

    def xero_parts(self, tenant_id, record) -> list[tuple[str, XeroLink]]:
        """A refund is its credit note (the panel's own link), its allocation and its refund payment: the
        payment's state (deleted in Xero, say) shows here too."""
        parts = XeroLink.objects.filter(tenant_id=tenant_id, kind__in=list(self.PARTS), local_id=record.pk)
        return sorted(((self.PARTS[part.kind], part) for part in parts), key=lambda pair: pair[0])


for model, model_admin in ((Contact, XeroContactAdmin), (Sale, XeroSaleAdmin), (Receipt, XeroReceiptAdmin),
                           (Refund, XeroRefundAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
