"""What the Xero integration stores: the connection and its tokens, the settings staff choose, leases.

Tokens are stored only encrypted (see crypto.py); nothing here ever holds them in clear.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from ecommerce.models import PaymentMethod


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
        return f"OAuth attempt {self.pk} started {self.started_at:%Y-%m-%d %H:%M}"


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
