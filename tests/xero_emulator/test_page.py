"""The read-only HTML overview and detail pages: what arrived in "Xero", all text escaped."""

import requests

from .helpers import line


def test_the_overview_lists_contacts_invoices_and_payments_escaped(emulator, xero):
    contact = xero.create_contact(Name="<script>alert(1)</script> & Sons", EmailAddress="o'brien@example.com")
    sale = xero.create_invoice(
        Contact={"ContactID": contact["ContactID"]},
        InvoiceNumber="WEB-<b>1</b>",
        lines=[line(quantity=1, unit_amount=100)],
    )
    xero.pay(sale["InvoiceID"], 15, Reference="card & cash")

    page = requests.get(emulator.base_url + "/", timeout=5)

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "<script>alert(1)</script>" not in html and "<b>1</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in html
    assert "o&#x27;brien@example.com" in html
    assert "WEB-&lt;b&gt;1&lt;/b&gt;" in html and "115.00" in html and "100.00" in html
    assert "card &amp; cash" in html
    assert f"/_emulator/orgs/{emulator.default_tenant_id}/invoices/{sale['InvoiceID']}" in html


def test_detail_pages_show_one_record_as_the_api_returns_it(emulator, xero):
    sale = xero.create_invoice(InvoiceNumber="WEB-1001", Reference="<i>gift</i>")
    base = f"{emulator.base_url}/_emulator/orgs/{emulator.default_tenant_id}"

    page = requests.get(f"{base}/invoices/{sale['InvoiceID']}", timeout=5)

    assert page.status_code == 200
    assert "Invoice WEB-1001" in page.text and "&lt;i&gt;gift&lt;/i&gt;" in page.text
    contact_page = requests.get(f"{base}/contacts/{sale['Contact']['ContactID']}", timeout=5)
    assert "Ann Customer" in contact_page.text
    assert requests.get(f"{base}/invoices/00000000-0000-0000-0000-000000000000", timeout=5).status_code == 404


def test_the_overview_lists_credit_notes_and_refunds(emulator, xero):
    note = xero.create_credit_note(CreditNoteNumber="CN-<i>7</i>", lines=[line(quantity=1, unit_amount=100)])
    xero.refund(note["CreditNoteID"], 15, Reference="refund & thanks")

    html = requests.get(emulator.base_url + "/", timeout=5).text

    assert "Credit notes (1)" in html and "CN-&lt;i&gt;7&lt;/i&gt;" in html and "<i>7</i>" not in html
    assert "100.00" in html  # the remaining credit: 115.00 less 15.00
    assert "refund &amp; thanks" in html
    assert f"/_emulator/orgs/{emulator.default_tenant_id}/creditnotes/{note['CreditNoteID']}" in html
