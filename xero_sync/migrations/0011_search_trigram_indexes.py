from django.db import migrations

from ecommerce.search_indexes import trigram_indexes


class Migration(migrations.Migration):

    dependencies = [
        ("xero_sync", "0010_books_check"),
    ]

    # The Xero links list's search box (see ecommerce.search_indexes).
    operations = [trigram_indexes({"xero_sync_xerolink": ["xero_key", "xero_name", "last_error"]})]
