"""What the Xero integration stores: the connection and its tokens, the settings staff choose, leases.

Tokens are stored only encrypted (see crypto.py); nothing here ever holds them in clear.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ecommerce.models import PaymentMethod


def shop_time(moment) -> str:
    """A moment as the site shows every time: the shop's clock, the zone named (the admin's titles use it)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}" if moment else ""


class XeroConnection(models.Model):
    """One Xero organisation this site is (or was) connected to. At most one is current."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Connected"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnecting"
        DISCONNECTED = "disconnected", "Disconnected"

    tenant_id = models.UUIDField("Xero tenant id", unique=True)
    tenant_name = models.CharField("organisation", max_length=255)
    xero_connection_id = models.CharField(max_length=64, blank=True, help_text="Xero's id for this connection.")
    is_current = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)
    token_ciphertext = models.BinaryField(editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField()
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reconnect_notified_at = models.DateTimeField(null=True, blank=True)
    # Payment-enabled accounts and tax rates fetched from the organisation, cached for the settings page.
    # Xero's limits as last seen, and a pause after a daily-limit 429 (until Xero's Retry-After).
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=255, blank=True)
    minute_remaining = models.IntegerField(null=True, blank=True)
    day_remaining = models.IntegerField(null=True, blank=True)
    accounts_cache = models.JSONField(default=list, blank=True)
    tax_rates_cache = models.JSONField(default=list, blank=True)
    chart_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_current"], condition=Q(is_current=True), name="one_current_xero_connection")
        ]
        permissions = [("manage_xero", "Can manage the Xero connection and sync settings")]

    def __str__(self) -> str:
        return f"{self.tenant_name} ({self.get_status_display()})"


class OAuthAttempt(models.Model):
    """One pass through Xero's consent screen. The state is single-use: a replayed callback finds it spent."""

    state = models.CharField(max_length=128, unique=True)
    code_verifier = models.CharField(max_length=128)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    # After the code exchange, when the consent covered several organisations: the token (encrypted) and
    # the organisations to choose from, until staff pick one.
    pending_token_ciphertext = models.BinaryField(null=True, blank=True, editable=False)
    pending_tenants = models.JSONField(default=list, blank=True)
    completed_connection = models.ForeignKey(XeroConnection, null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"OAuth attempt {self.pk} started {shop_time(self.started_at)}"


class Lease(models.Model):
    """A named, expiring claim, taken with a conditional UPDATE: a crashed holder's lease simply expires."""

    name = models.CharField(max_length=100, primary_key=True)
    owner = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner or 'nobody'} until {self.expires_at}"


class SyncSettings(models.Model):
    """The staff's choices for the sync; a single row (pk=1)."""

    auto_sync = models.BooleanField("auto-sync", default=True)
    debounce_seconds = models.PositiveIntegerField(
        "quiet period (seconds)", default=120, help_text="Push once the site has been quiet this long."
    )
    max_wait_seconds = models.PositiveIntegerField(
        "longest wait (seconds)", default=600, help_text="Push after this long even if edits keep coming."
    )
    default_sales_account_code = models.CharField(max_length=50, blank=True)
    shipping_account_code = models.CharField(max_length=50, blank=True)
    last_digest_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the daily books check last noted differences for the digest (services.schedule.books_check_daily).
    books_watched_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "sync settings"
        constraints = [models.CheckConstraint(name="sync_settings_singleton", condition=Q(pk=1))]

    def __str__(self) -> str:
        return "Xero sync settings"


class TaxMapping(models.Model):
    """Which Xero tax type a website tax code becomes, e.g. GST -> OUTPUT2."""

    tax_code = models.CharField("website tax code", max_length=50, unique=True)
    xero_tax_type = models.CharField("Xero tax type", max_length=50)

    class Meta:
        ordering = ["tax_code"]

    def __str__(self) -> str:
        return f"{self.tax_code} -> {self.xero_tax_type}"


class PaymentMethodConfig(models.Model):
    """Which side owns a payment method's payments, so every payment has exactly one owner (no echo)."""

    class Direction(models.TextChoices):
        PUSH = "push", "Push receipts to Xero"
        PULL = "pull", "Pull Xero payments into the website"
        NONE = "none", "Neither"

    payment_method = models.OneToOneField(PaymentMethod, on_delete=models.CASCADE, related_name="xero_config")
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.NONE)
    xero_account_code = models.CharField("Xero account", max_length=50, blank=True)

    def __str__(self) -> str:
        return f"{self.payment_method}: {self.get_direction_display()}"


class RecordKind(models.TextChoices):
    """The website's records the push sends to Xero."""

    CONTACT = "contact", "Contact"
    SALE = "sale", "Sale"
    RECEIPT = "receipt", "Receipt"
    # A refund is up to three things in Xero, each with its own link: the credit note (kind REFUND, and the
    # refund's outbox kind), its allocation to the sale's invoice, and the payment of the money paid back.
    REFUND = "refund", "Refund"
    ALLOCATION = "allocation", "Credit allocation"
    REFUND_PAYMENT = "refund_pay", "Refund payment"


class XeroRecordKind(models.TextChoices):
    """Xero's records the pull takes in: its failures (PullRetry) and a run's pulled/failed counts."""

    CONTACT = "contact", "Contact"
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"
    PAYMENT = "payment", "Payment"


class OutboxEntry(models.Model):
    """A committed change to a record Xero cares about: ids only, no payload.

    Written in the same transaction as the change (rolled back with it), so a committed change always
    leaves one; the drain reads the record as it is at push time. Append-only while pending: 100 edits
    leave 100 rows and make one write, and recording never waits on another transaction's lock.
    """

    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    local_id = models.BigIntegerField()
    recorded_at = models.DateTimeField(db_index=True)
    # Set after a transient failure: the record is retried from this time (jittered backoff).
    not_before = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "local_id"])]
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.local_id} at {shop_time(self.recorded_at)}"


class OutboxHeld(models.Model):
    """A change another organisation this site has been connected to has not received yet.

    The outbox is the current organisation's: a run drops the rows of what it sent. So that switching to
    another organisation and back strands nothing, dropping a row leaves one of these per other
    organisation (one per record, however often it changed); when that organisation's runs start again,
    they move its rows back into the outbox (services/outbox.py explains why this and not the others).
    """

    tenant_id = models.UUIDField()
    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    local_id = models.BigIntegerField()
    held_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "kind", "local_id"],
                                               name="one_held_change_per_record")]
        verbose_name_plural = "changes held for other organisations"

    def __str__(self) -> str:
        return f"{self.kind} {self.local_id} held for {self.tenant_id}"


class XeroLink(models.Model):
    """One website record in one Xero organisation: its Xero id and where its sync stands."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "Sending"
        SYNCED = "synced", "Synced"
        ERROR = "error", "Error"
        LOCKED = "locked", "Locked in Xero"
        CONFLICT = "conflict", "Conflict"
        DEAD = "dead", "Gave up"
        # The bookkeeper deleted it in Xero (a payment or refund): the website stops counting it until staff
        # send it again.
        DELETED = "deleted", "Deleted in Xero"

    class ErrorBy(models.TextChoices):
        """Who the last error comes from, recorded where it is written: staff are told "Xero says" or "this
        site's check", and reading that off the words instead mislabels any of Xero's messages that happen
        to share a phrase with one of ours."""

        XERO = "xero", "Xero"  # Xero's answer: a validation error, a refusal, a failed or lost call
        SITE = "site", "This site's check"  # decided here before sending: not sent to Xero

    tenant_id = models.UUIDField()
    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    local_id = models.BigIntegerField()
    xero_id = models.UUIDField(null=True, blank=True)
    # The key Xero holds that leads back to us: ContactNumber, InvoiceNumber or the payment's Reference.
    xero_key = models.CharField(max_length=255, blank=True)
    # The contact's name in Xero, when it had to differ from the website's to stay unique.
    xero_name = models.CharField(max_length=255, blank=True)
    # Xero's own status of the record (ACTIVE/ARCHIVED contact, AUTHORISED/PAID/VOIDED... invoice).
    xero_status = models.CharField(max_length=20, blank=True)
    payload_hash = models.CharField(max_length=64, blank=True, help_text="Hash of what Xero holds.")
    sent_hash = models.CharField(max_length=64, blank=True, help_text="Hash of what was last sent.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    last_error = models.TextField(blank=True)
    # db_default too: a writer that does not know the column (raw SQL, code of the release before) still inserts.
    error_by = models.CharField(max_length=4, choices=ErrorBy.choices, blank=True, default="", db_default="",
                                help_text="Who said the last error; blank when there is none.")
    attempts = models.PositiveIntegerField(default=0)
    in_flight_since = models.DateTimeField(null=True, blank=True)
    xero_updated_at = models.DateTimeField(null=True, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant_id", "kind", "local_id"], name="one_link_per_record"),
            models.UniqueConstraint(fields=["tenant_id", "kind", "xero_id"], name="one_record_per_xero_id"),
        ]
        indexes = [
            models.Index(fields=["state"]),
            # EXPLAIN ANALYZE at 300,000 links: the Xero links list (ORDER BY last_pushed_at DESC, id DESC
            # LIMIT 100) and the settings page's current errors were a Seq Scan + top-N heapsort of every
            # link (~80 ms); with this index, an Index Scan that stops after the page.
            models.Index(fields=["-last_pushed_at", "-id"], name="xerolink_last_pushed"),
            # The links not synced are a few percent of all: the admin's Xero filter and sort read them as
            # a hash (`local_id IN (...)`, xero_sync.admin.xero_state_order) from this small index instead
            # of the 300,000-row unique one (Bitmap Index Scan, ~1 ms against ~25 ms).
            models.Index(fields=["tenant_id", "kind", "state", "local_id"], condition=~Q(state="synced"),
                         name="xerolink_unsettled"),
            # The "status in Xero" filter's choices by a loose index scan: SELECT DISTINCT over 300,000
            # links was ~55 ms (ecommerce.admin.distinct_values).
            models.Index(fields=["xero_status"], name="xerolink_xero_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.local_id} -> {self.xero_id or '?'} ({self.state})"


class UnlinkedRecord(models.Model):
    """A website record (contact, sale, receipt, refund) with no link in the organisation whose set is kept
    (UnlinkedTenant: the current one). Kept by PostgreSQL triggers on the record tables and on XeroLink
    (migration 0013), in the writer's own transaction, whatever writes (the ORM, bulk SQL, a restore's
    INSERTs), so it is never behind.

    Why: the admin's Xero column needs the records with no link ("not for Xero yet", "pending" before the
    first push). As an anti-join of the whole table against the links that read every id of both (~50 ms
    of each Xero-sorted or filtered page at 100,000 sales, growing with the table); this is a range of an
    index as long as the set itself. Not on SQLite, where the admin keeps the anti-join."""

    tenant_id = models.UUIDField()
    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    local_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "kind", "local_id"], name="one_unlinked_per_record")]
        # The triggers' deletes by record (a record deleted, a link made) find their rows by this.
        indexes = [models.Index(fields=["kind", "local_id"], name="unlinked_by_record")]

    def __str__(self) -> str:
        return f"{self.kind} {self.local_id} has no link in {self.tenant_id}"


class UnlinkedTenant(models.Model):
    """The organisation whose UnlinkedRecord set is kept: set, and the set filled, the first time the admin
    asks for it (xero_sync.services.unlinked.unlinked_ids); one at a time, the current one."""

    tenant_id = models.UUIDField(primary_key=True)
    filled_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.tenant_id)


class XeroContactIndex(models.Model):
    """Every contact in the organisation (name, number, email, status), kept current by the pull's
    If-Modified-Since read of contacts, which each run makes anyway. Matching a new website contact against it costs no
    call, and it knows which names are taken among active contacts."""

    tenant_id = models.UUIDField()
    xero_id = models.UUIDField()
    name = models.CharField(max_length=255)
    contact_number = models.CharField(max_length=50, blank=True, db_index=True)
    email = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(max_length=20)
    is_customer = models.BooleanField(default=False)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "xero_id"], name="one_index_row_per_contact")]

    def __str__(self) -> str:
        return self.name


class SyncRun(models.Model):
    """One conversation with Xero: what it pushed and pulled, the calls it cost, what went wrong."""

    class Trigger(models.TextChoices):
        AUTO = "auto", "After changes"
        MANUAL = "manual", "Sync now"
        DAILY = "daily", "Daily"
        COMMAND = "command", "Command line"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        PAUSED = "paused", "Paused"

    tenant_id = models.UUIDField()
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    pushed = models.JSONField(default=dict, blank=True)
    pulled = models.JSONField(default=dict, blank=True)
    failed = models.JSONField(default=dict, blank=True)
    calls = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    # The time budget stopped the push with records still to send: a follow-up run should go at once.
    work_remains = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]
        # EXPLAIN ANALYZE at a year of runs (52,560): the last runs (settings page, xero_sync status, the
        # Sync runs list) were a Seq Scan + top-N heapsort of every run, and the dashboard's 30 days and 24
        # hours a Seq Scan with a filter; with this index, Index Scans of the page and of those ranges.
        indexes = [models.Index(fields=["-started_at"], name="syncrun_newest_first")]

    def __str__(self) -> str:
        return f"Sync {shop_time(self.started_at)} ({self.get_status_display()})"


class PullCursor(models.Model):
    """How far the pull of one kind of Xero record has got: the newest UpdatedDateUTC actually received.
    Saved after every page, so a crash mid-pull resumes where it stopped."""

    class Entity(models.TextChoices):
        CONTACTS = "contacts", "Contacts (the pull's)"
        # A push-only run refreshes the contact index from a cursor of its own, so the pull's contacts
        # cursor still has those changes to apply later.
        CONTACT_INDEX = "contact-index", "Contact index (a push-only run's)"
        CUSTOMERS = "customers", "Customer list (weekly full read)"
        INVOICES = "invoices", "Invoices"
        CREDIT_NOTES = "credit-notes", "Credit notes"
        PAYMENTS = "payments", "Payments"

    tenant_id = models.UUIDField()
    entity = models.CharField(max_length=20, choices=Entity.choices)
    watermark = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True, help_text="Last full read (customers).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "entity"], name="one_cursor_per_entity")]

    def __str__(self) -> str:
        return f"{self.entity} since {self.watermark}"


class SyncConflict(models.Model):
    """A record changed on both sides since the last sync: which side was kept, and the version that was
    overwritten, so staff can see what was lost and put it back."""

    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="conflicts")
    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    local_id = models.BigIntegerField()
    kept = models.CharField(max_length=10, choices=[("website", "Website"), ("xero", "Xero")])
    overwritten = models.JSONField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.local_id}: kept {self.kept}"


class WebhookDelivery(models.Model):
    """A verified webhook delivery from Xero, kept to ignore Xero's re-deliveries of the same events."""

    fingerprint = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True)
    events = models.JSONField()

    def __str__(self) -> str:
        return f"Webhook {self.fingerprint[:10]} at {self.received_at}"


class SyncEvent(models.Model):
    """One step in a record's sync history: pushed, pulled, refused by Xero, conflict... shown on its page."""

    link = models.ForeignKey(XeroLink, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=20)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} at {shop_time(self.at)}"


class PullRetry(models.Model):
    """A Xero record the pull could not take in. The cursor moved on past it, so it is fetched again by id
    on every pull until it lands (a fixed contact does not move its invoices' UpdatedDateUTC)."""

    tenant_id = models.UUIDField()
    entity = models.CharField(max_length=20, choices=XeroRecordKind.choices)
    xero_id = models.UUIDField()
    reason = models.TextField()
    failed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "entity", "xero_id"], name="one_retry_per_record")]

    def __str__(self) -> str:
        return f"{self.entity} {self.xero_id}: {self.reason}"


class BooksCheckMonth(models.Model):
    """The books check's figures for one month and currency, as last checked (daily, or when staff ask):
    the Books check page shows twelve of these instead of checking a year of sales on every visit."""

    tenant_id = models.UUIDField()
    month = models.DateField(help_text="The month's first day, in the shop's time zone.")
    currency = models.CharField(max_length=3)
    sales = models.PositiveIntegerField(default=0)
    invoiced = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    paid = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    in_xero = models.PositiveIntegerField(default=0)
    in_xero_total = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    differences = models.PositiveIntegerField(default=0)
    unexplained = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-month", "currency"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "month", "currency"],
                                               name="one_books_check_per_month_and_currency")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.currency}: {self.unexplained} unexplained"
