from django.db import migrations

from ecommerce.search_indexes import trigram_indexes

# The columns each admin search box tests with "contains" (see ecommerce.search_indexes).
SEARCHED = {
    "ecommerce_contact": ["first_name", "last_name", "company_name", "email", "phone"],
    "ecommerce_sale": ["number", "reference"],
    "ecommerce_receipt": ["reference"],
    "ecommerce_refund": ["number"],
    "ecommerce_invoice": ["number", "reference"],
    "ecommerce_creditnote": ["number", "reference"],
    "ecommerce_payment": ["reference"],
}


class Migration(migrations.Migration):

    dependencies = [
        ("ecommerce", "0004_indexes_and_contact_figures"),
    ]

    operations = [trigram_indexes(SEARCHED)]
