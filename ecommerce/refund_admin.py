"""The sale's "Record a refund" page in the admin: thin, like the rest of the admin. The form reads what
staff chose (everything received, an amount, or lines with quantities; or "Cancel and refund"), and one
service call records it (services.refund_record or services.sale_cancel); a refusal comes back on the form
with nothing stored."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from . import selectors, services
from .models import PaymentMethod, Sale

EVERYTHING, AMOUNT, LINES = "everything", "amount", "lines"
LINE_FIELD = "line_{}"


class RefundForm(forms.Form):
    payment_method = forms.ModelChoiceField(PaymentMethod.objects.filter(active=True), label="Money goes back by")
    what = forms.ChoiceField(label="Refund", widget=forms.RadioSelect, initial=EVERYTHING, choices=[
        (EVERYTHING, "Everything received and not yet given back"),
        (AMOUNT, "An amount"),
        (LINES, "Some of the lines (quantities below)"),
    ])
    amount = forms.DecimalField(required=False, max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(required=False, max_length=255)
    cancel = forms.BooleanField(required=False, label="Cancel the sale too (Cancel and refund)",
                                help_text="Gives back everything received by this method, credits the rest of the "
                                          "sale, and cancels it: one step. The choice above is then not used.")

    def __init__(self, *args, sale: Sale, **kwargs):
        super().__init__(*args, **kwargs)
        self.sale = sale
        self.sale_lines = list(sale.lines.all())
        for line in self.sale_lines:
            self.fields[LINE_FIELD.format(line.pk)] = forms.DecimalField(
                required=False, min_value=Decimal("0"), max_digits=14, decimal_places=4,
                label=f"{line.description} (of {line.quantity.normalize():f})")

    def line_fields(self):
        return [self[LINE_FIELD.format(line.pk)] for line in self.sale_lines]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("cancel"):
            return cleaned
        if cleaned.get("what") == AMOUNT and cleaned.get("amount") is None:
            self.add_error("amount", "Give the amount to refund.")
        if cleaned.get("what") == LINES and not self.chosen_lines():
            raise ValidationError("Give a quantity for at least one line.")
        return cleaned

    def chosen_lines(self) -> list[dict]:
        return [{"line": line, "quantity": self.cleaned_data[LINE_FIELD.format(line.pk)]}
                for line in self.sale_lines if self.cleaned_data.get(LINE_FIELD.format(line.pk))]

    def record(self):
        """Call the service this form stands for; returns the refund (or the cancelled sale's)."""
        data = self.cleaned_data
        if data["cancel"]:
            sale = services.sale_cancel(sale=self.sale, refund_to=data["payment_method"], reason=data["reason"])
            return sale.refunds.order_by("-pk").first()
        arguments = {"sale": self.sale, "payment_method": data["payment_method"], "reason": data["reason"]}
        if data["what"] == AMOUNT:
            arguments["amount"] = data["amount"]
        elif data["what"] == LINES:
            arguments["lines"] = self.chosen_lines()
        return services.refund_record(**arguments)


def refund_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Record a refund on a sale: needs the permission to add refunds (and to change sales, to cancel)."""
    if not request.user.has_perm("ecommerce.add_refund"):
        raise PermissionDenied("You need the 'add refund' permission to record refunds.")
    sale = get_object_or_404(Sale.objects.prefetch_related(*selectors.SALE_PREFETCH), pk=object_id)
    form = RefundForm(request.POST or None, sale=sale)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["cancel"] and not request.user.has_perm("ecommerce.change_sale"):
            raise PermissionDenied("You need the 'change sale' permission to cancel a sale.")
        try:
            refund = form.record()
        except ValidationError as error:
            for field, problems in (error.error_dict if hasattr(error, "error_dict") else {None: error.messages}).items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            done = f"{sale.number} cancelled" if form.cleaned_data["cancel"] else "Refund recorded"
            words = f"{done}: {refund.number}, {refund.credit_total} credited" if refund else f"{done}."
            if refund and refund.amount_refunded:
                words += f", {refund.amount_refunded} back by {refund.payment_method}"
            messages.success(request, words + ".")
            return redirect(reverse("admin:ecommerce_sale_change", args=[sale.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Record a refund on {sale.number}",
        "opts": model_admin.model._meta,
        "sale": sale,
        "form": form,
        "total": selectors.sale_totals(sale).total,
        "paid": selectors.sale_amount_paid(sale),
        "held": selectors.sale_amount_held(sale),
        "creditable": selectors.sale_amount_creditable(sale),
        "state": selectors.sale_payment_state(sale).label,
    }
    return TemplateResponse(request, "admin/ecommerce/sale/refund.html", context)
