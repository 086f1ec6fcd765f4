"""Forms for the Xero settings page. They only parse input; the rules live in services.configuration."""

from django import forms

from .models import PaymentMethodConfig
from .services.configuration import MAX_DEBOUNCE_SECONDS, MAX_WAIT_SECONDS, MIN_DEBOUNCE_SECONDS


def _code_field(label: str, entries: list[dict], key: str, *, required: bool = False, help_text: str = ""):
    """A dropdown of the organisation's codes once the chart is known; free text before that."""
    if not entries:
        return forms.CharField(label=label, required=required, max_length=50, help_text=help_text)
    choices = [("", "---------")] + [(entry[key], f"{entry[key]} — {entry.get('Name', '')}") for entry in entries]
    return forms.ChoiceField(label=label, required=required, choices=choices, help_text=help_text)


class SyncSettingsForm(forms.Form):
    auto_sync = forms.BooleanField(label="Auto-sync", required=False,
                                   help_text="Push changes automatically after the quiet period.")
    # Bounded here too (with the service's words), so an absurd number is a form error, not a database error.
    debounce_seconds = forms.IntegerField(
        label="Quiet period (seconds)", min_value=1, max_value=MAX_DEBOUNCE_SECONDS,
        error_messages={"max_value": f"The quiet period must be between {MIN_DEBOUNCE_SECONDS} and "
                                     f"{MAX_DEBOUNCE_SECONDS} seconds."})
    max_wait_seconds = forms.IntegerField(
        label="Longest wait (seconds)", min_value=1, max_value=MAX_WAIT_SECONDS,
        error_messages={"max_value": f"The longest wait can be at most {MAX_WAIT_SECONDS} seconds (a day)."})

    def __init__(self, *args, revenue_accounts: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_sales_account_code"] = _code_field(
            "Default sales account", revenue_accounts, "Code", help_text="Used for lines without their own.")
        self.fields["shipping_account_code"] = _code_field(
            "Shipping account", revenue_accounts, "Code", help_text="Used for shipping lines.")


NOT_CHOSEN = ""  # a method nobody has decided on yet: saving the page leaves it undecided (the checklist asks)


class PaymentMethodConfigForm(forms.Form):
    # Not "neither" by default: the page saves every section at once, and a method nobody looked at must not
    # be decided by a press of another section's button.
    direction = forms.ChoiceField(choices=[(NOT_CHOSEN, "Not chosen yet"), *PaymentMethodConfig.Direction.choices],
                                  required=False)

    def __init__(self, *args, payment_accounts: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["xero_account_code"] = _code_field("Xero account", payment_accounts, "Code")


class TaxMappingForm(forms.Form):
    # Blank is a code too: lines saved without one ("no tax code") are mapped like any other.
    tax_code = forms.CharField(widget=forms.HiddenInput, max_length=50, required=False, strip=False)

    def __init__(self, *args, tax_types: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["xero_tax_type"] = _code_field("Xero tax type", tax_types, "TaxType")


class TenantChoiceForm(forms.Form):
    def __init__(self, *args, tenants: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant_id"] = forms.ChoiceField(
            label="Organisation", widget=forms.RadioSelect,
            choices=[(tenant["tenantId"], tenant["tenantName"]) for tenant in tenants],
        )
