"""A realistic small shop for the demo and for trying the sync: `python manage.py seed_demo`.

Safe to run again: contacts are found by email, sales by their DEMO- reference, methods by code, so a
second run adds nothing. The DEMO- reference is also the demo's mark: the sync sends these sales (and
their receipts and contacts) to the built-in emulator, never to a real organisation unless
XERO_PUSH_DEMO_DATA says so.
"""

import datetime
import random
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from ecommerce import selectors, services
from ecommerce.models import Contact, LineAmountType, PaymentMethod, Sale

DEMO_REFERENCE_PREFIX = "DEMO-"
PAYMENT_METHODS = [("Card", "card"), ("Cash", "cash"), ("Direct deposit", "direct-deposit")]

FIRST_NAMES = ["Aroha", "Ben", "Charlotte", "Dylan", "Emma", "Finn", "Grace", "Hemi", "Isla", "Jack", "Kiri",
               "Liam", "Mia", "Noah", "Olivia", "Priya", "Quinn", "Ruby", "Sam", "Tama", "Uma", "Vera",
               "Wiremu", "Xavier", "Yasmin", "Zoe", "Ana", "Oscar"]
LAST_NAMES = ["Walker", "Ngata", "Brown", "Wilson", "Taylor", "Patel", "Kaur", "Tipene", "Chen", "Smith",
              "Martin", "Anderson", "Thompson", "Parata", "Lee", "Campbell", "Kumar", "Stewart"]
CITIES = [("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011"),
          ("Christchurch", "Canterbury", "8011"), ("Dunedin", "Otago", "9016"), ("Hamilton", "Waikato", "3204"),
          ("Tauranga", "Bay of Plenty", "3110"), ("Nelson", "Nelson", "7010")]
COMPANIES = ["Harbour Cafe Ltd", "Kauri Outdoor Co", "Southern Lights Studio", "Te Awa Bakery"]

# (description, unit price, tax %, tax code): prices chosen so that per-line rounding changes the cents.
PRODUCTS = [
    ("Merino beanie", Decimal("39.95"), Decimal("15"), "GST"),
    ("Flat white beans 1kg", Decimal("42.50"), Decimal("15"), "GST"),
    ("Ceramic mug", Decimal("9.99"), Decimal("15"), "GST"),
    ("Hand cream 75ml", Decimal("18.3333"), Decimal("15"), "GST"),
    ("Sticker (each)", Decimal("0.3333"), Decimal("15"), "GST"),
    ("Gift card", Decimal("50.00"), Decimal("0"), "ZERO"),
    ("Wool socks (pair)", Decimal("24.9950"), Decimal("15"), "GST"),
    ("Tea towel", Decimal("14.49"), Decimal("15"), "GST"),
]
SHIPPING = ("Courier, nationwide", Decimal("8.50"), Decimal("15"), "GST")


class Command(BaseCommand):
    help = "Create demo contacts, payment methods, sales and receipts, and a staff login. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=36)
        parser.add_argument("--sales", type=int, default=48)
        parser.add_argument("--quiet-login", action="store_true",
                            help="Name the staff user without its password (make run prints it with the URL).")

    @transaction.atomic
    def handle(self, *args, contacts: int, sales: int, **options):
        rng = random.Random(2026)  # the same shop every time
        methods = self._payment_methods()
        people = self._contacts(rng, contacts)
        created_sales = self._sales(rng, people, methods, sales)
        username, password = self._staff_user()
        # The password is printed once, with the admin's address, by `make run` (config/embedded.py) when
        # it is the one made here; run on its own, this says it.
        self.stdout.write(
            f"Demo shop: {Contact.objects.count()} contacts, {Sale.objects.count()} sales "
            f"({created_sales} new), {len(methods)} payment methods. Staff login: {username}"
            + ("" if options.get("quiet_login") else f" / {password}")
        )

    def _payment_methods(self) -> dict[str, PaymentMethod]:
        methods = {}
        for name, code in PAYMENT_METHODS:
            method = PaymentMethod.objects.filter(code=code).first()
            methods[code] = method or services.payment_method_create(name=name, code=code)
        return methods

    def _contacts(self, rng: random.Random, count: int) -> list[Contact]:
        specs = []
        # Two different people who share a name: the sync must never merge them.
        specs.append({"first_name": "David", "last_name": "Smith", "email": "david.smith@example.co.nz",
                      "phone": "021 555 0101"})
        specs.append({"first_name": "David", "last_name": "Smith", "email": "dsmith.builder@example.net",
                      "phone": "027 555 0199"})
        for company in COMPANIES:
            slug = company.lower().replace(" ", "")[:14]
            specs.append({"company_name": company, "email": f"accounts@{slug}.example.nz"})
        while len(specs) < count:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}{len(specs)}@example.com".lower()
            specs.append({"first_name": first, "last_name": last, "email": email})
        people = []
        for spec in specs[:count]:
            city, region, postcode = CITIES[len(people) % len(CITIES)]
            existing = Contact.objects.filter(email=spec["email"]).first()
            people.append(existing or services.contact_create(
                **spec, address_line1=f"{rng.randint(1, 250)} {rng.choice(['Queen', 'King', 'Beach', 'Hill'])} St",
                city=city, region=region, postcode=postcode, country="NZ",
            ))
        return people

    def _sales(self, rng: random.Random, people: list[Contact], methods, count: int) -> int:
        created = 0
        today = timezone.localdate()
        for index in range(1, count + 1):
            reference = f"{DEMO_REFERENCE_PREFIX}{index:04d}"
            if Sale.objects.filter(reference=reference).exists():
                continue
            inclusive = index % 3 != 0  # most web prices include GST; trade orders (every third) do not
            lines = []
            for product in rng.sample(PRODUCTS, rng.randint(1, 4)):
                description, price, tax_rate, tax_code = product
                if not inclusive:
                    price = (price / Decimal("1.15")).quantize(Decimal("0.0001"))
                lines.append({
                    "description": description, "quantity": Decimal(rng.choice([1, 1, 2, 3, 7])),
                    "unit_amount": price, "tax_rate": tax_rate, "tax_code": tax_code,
                    "discount_rate": rng.choice([Decimal("0"), Decimal("0"), Decimal("10"), Decimal("12.5")]),
                })
            if index % 2:
                description, price, tax_rate, tax_code = SHIPPING
                lines.append({"kind": "shipping", "description": description, "unit_amount": price,
                              "tax_rate": tax_rate, "tax_code": tax_code})
            sale_date = today - datetime.timedelta(days=count - index)
            sale = services.sale_create(
                contact=people[index % len(people)], lines=lines, date=sale_date,
                due_date=sale_date + datetime.timedelta(days=14), reference=reference,
                line_amount_type=LineAmountType.INCLUSIVE if inclusive else LineAmountType.EXCLUSIVE,
                confirm=index % 8 != 0,  # every eighth sale stays a draft (an abandoned cart)
            )
            created += 1
            if sale.status == Sale.Status.CONFIRMED and index % 5 != 0:  # every fifth is still unpaid
                services.receipt_record(
                    sale=sale, payment_method=methods["card" if index % 4 else "cash"],
                    amount=selectors.sale_amount_due(sale), date=sale_date, reference=f"ch_demo_{index:04d}",
                )
        return created

    def _staff_user(self) -> tuple[str, str]:
        username, password = settings.DEMO_ADMIN_USERNAME, settings.DEMO_ADMIN_PASSWORD
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return username, "(existing user; password unchanged)"
        User.objects.create_superuser(username=username, email=f"{username}@example.com", password=password)
        return username, password
