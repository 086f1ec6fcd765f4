"""Small builders for shop records, through the same services the admin uses."""

from decimal import Decimal

from ecommerce import services
from ecommerce.models import Contact, PaymentMethod, Sale


def a_contact(**fields) -> Contact:
    fields.setdefault("first_name", "Aroha")
    fields.setdefault("last_name", "Walker")
    fields.setdefault("email", f"{fields['first_name']}.{fields['last_name']}@example.com".lower())
    return services.contact_create(**fields)


def a_payment_method(code: str = "card", name: str = "Card") -> PaymentMethod:
    return PaymentMethod.objects.filter(code=code).first() or services.payment_method_create(name=name, code=code)


def a_sale(*, contact: Contact | None = None, confirm: bool = True, lines=None, **fields) -> Sale:
    lines = lines if lines is not None else [
        {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
         "tax_rate": Decimal("15")},
    ]
    return services.sale_create(contact=contact or a_contact(), lines=lines, confirm=confirm, **fields)
