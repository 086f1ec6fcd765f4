"""The pure translations from shop records to Xero payloads: no database, no HTTP.

Records are built unsaved (pytest-django refuses database access here, so a mapper that queried would
fail these tests). Figures are worked by hand in the comments.
"""

import datetime
from decimal import Decimal

import pytest

from ecommerce.models import Contact, Receipt, Sale, SaleLine
from xero_sync import mappers

TAX_TYPES = {"GST": "OUTPUT2", "ZERO": "ZERORATEDOUTPUT"}
TAX_RATES = {"OUTPUT2": Decimal("15.0000"), "ZERORATEDOUTPUT": Decimal("0.0000")}
INVOICE_DEFAULTS = {"contact_xero_id": "5b96e86b-418e-48e8-8949-308c14aec278", "sales_account": "200",
                    "shipping_account": "205", "tax_types": TAX_TYPES, "tax_rates": TAX_RATES}


def a_sale(**fields) -> Sale:
    fields = {"number": "S-000001", "date": datetime.date(2026, 3, 2), "currency": "NZD",
              "line_amount_type": "exclusive", **fields}
    return Sale(**fields)


def a_line(**fields) -> SaleLine:
    fields = {"description": "Merino beanie", "quantity": Decimal("1"), "unit_amount": Decimal("10"),
              "tax_rate": Decimal("15"), "tax_code": "GST", **fields}
    return SaleLine(**fields)


def empty_values(value, where="payload") -> list[str]:
    """Every None or empty value anywhere in a payload (xero-python cannot send None; Xero reads "" as
    "clear this field")."""
    if isinstance(value, dict):
        found = [f"{where}.{key}" for key, item in value.items() if item in (None, "", [], {})]
        return found + [problem for key, item in value.items() for problem in empty_values(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [problem for index, item in enumerate(value) for problem in empty_values(item, f"{where}[{index}]")]
    return []


# --- Contacts ----------------------------------------------------------------------------------------


def test_a_contact_becomes_a_xero_contact_numbered_with_the_website_key():
    # given a website contact with a phone and an address
    contact = Contact(pk=42, first_name="Aroha", last_name="Walker", email="aroha@example.com",
                      phone="021 555 0100", address_line1="1 Queen Street", city="Auckland", postcode="1010",
                      country="New Zealand")

    # when it is mapped
    payload = mappers.contact_payload(contact, name="Aroha Walker")

    # then Xero gets exactly these fields, with our key as its ContactNumber
    assert payload == {
        "Name": "Aroha Walker",
        "ContactNumber": "WEB-C000042",
        "FirstName": "Aroha",
        "LastName": "Walker",
        "EmailAddress": "aroha@example.com",
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "021 555 0100"}],
        "Addresses": [{"AddressType": "POBOX", "AddressLine1": "1 Queen Street", "City": "Auckland",
                       "PostalCode": "1010", "Country": "New Zealand"}],
    }


def test_a_contact_without_phone_or_address_sends_no_empty_fields():
    # given a company with only a name and an email
    contact = Contact(pk=7, company_name="Kauri Cafe Ltd", email="accounts@kauri.example")

    # when it is mapped for an existing Xero contact
    payload = mappers.contact_payload(contact, name="Kauri Cafe Ltd", xero_id="0c5e2a3f-1b1b-4a4a-9c9c-123456789abc")

    # then no phone, no address, and no empty value is sent (an empty one would clear the field in Xero)
    assert payload == {"ContactID": "0c5e2a3f-1b1b-4a4a-9c9c-123456789abc", "Name": "Kauri Cafe Ltd",
                       "ContactNumber": "WEB-C000007", "EmailAddress": "accounts@kauri.example"}
    assert empty_values(payload) == []


def test_a_lone_address_field_still_makes_an_address():
    # given a contact whose only address detail is the country
    contact = Contact(pk=8, first_name="Mere", country="Australia")

    # when it is mapped
    payload = mappers.contact_payload(contact, name="Mere")

    # then the address holds just that, and nothing is empty
    assert payload["Addresses"] == [{"AddressType": "POBOX", "Country": "Australia"}]
    assert "Phones" not in payload
    assert empty_values(payload) == []


def test_the_second_david_smith_gets_a_name_showing_who_he_is():
    # given two website contacts called David Smith, one without an email
    with_email = Contact(pk=3, first_name="David", last_name="Smith", email="d.smith@example.com")
    without_email = Contact(pk=4, first_name="David", last_name="Smith")

    # when each needs a name that differs from another active Xero contact's
    # then the email tells them apart, or failing that our key
    assert mappers.distinguishable_name(with_email) == "David Smith (d.smith@example.com)"
    assert mappers.distinguishable_name(without_email) == "David Smith (WEB-C000004)"


# --- Invoices ----------------------------------------------------------------------------------------


def test_a_sale_becomes_an_approved_sales_invoice_numbered_like_the_sale():
    # given a tax-exclusive sale: a discounted line at a 4-dp price, a line booked to another account,
    # a zero-rated line and shipping
    sale = a_sale(due_date=datetime.date(2026, 3, 20), reference="Web order 1001")
    lines = [
        # 3 x 19.995 = 59.985, less 10% = 53.9865 -> 53.99 (rounding the price first would give 54.00)
        a_line(quantity=Decimal("3"), unit_amount=Decimal("19.995"), discount_rate=Decimal("10")),
        a_line(description="Gift wrap", unit_amount=Decimal("4.5"), account_code="260"),
        a_line(description="Postcard", quantity=Decimal("7"), unit_amount=Decimal("0.3333"), tax_code="ZERO",
               tax_rate=Decimal("0")),
        a_line(description="Courier", kind=SaleLine.Kind.SHIPPING, unit_amount=Decimal("9.5")),
    ]

    # when it is mapped
    payload = mappers.invoice_payload(sale, lines, **INVOICE_DEFAULTS)

    # then Xero gets an AUTHORISED ACCREC invoice with the sale's number and our per-line figures
    assert payload == {
        "Type": "ACCREC",
        "InvoiceNumber": "S-000001",
        "Contact": {"ContactID": "5b96e86b-418e-48e8-8949-308c14aec278"},
        "Date": "2026-03-02",
        "DueDate": "2026-03-20",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "CurrencyCode": "NZD",
        "Reference": "Web order 1001",
        "LineItems": [
            {"Description": "Merino beanie", "Quantity": Decimal("3"), "UnitAmount": Decimal("19.995"),
             "DiscountRate": Decimal("10"), "AccountCode": "200", "TaxType": "OUTPUT2",
             "LineAmount": Decimal("53.99")},
            {"Description": "Gift wrap", "Quantity": Decimal("1"), "UnitAmount": Decimal("4.5"),
             "AccountCode": "260", "TaxType": "OUTPUT2", "LineAmount": Decimal("4.50")},
            {"Description": "Postcard", "Quantity": Decimal("7"), "UnitAmount": Decimal("0.3333"),
             "AccountCode": "200", "TaxType": "ZERORATEDOUTPUT", "LineAmount": Decimal("2.33")},
            {"Description": "Courier", "Quantity": Decimal("1"), "UnitAmount": Decimal("9.5"),
             "AccountCode": "205", "TaxType": "OUTPUT2", "LineAmount": Decimal("9.50")},
        ],
    }
    # and quantities and prices go with four decimal places (sent with unitdp=4), so no price is cut
    # to two places by Xero
    item = payload["LineItems"][0]
    assert (str(item["Quantity"]), str(item["UnitAmount"])) == ("3.0000", "19.9950")
    assert str(payload["LineItems"][2]["UnitAmount"]) == "0.3333"
    assert empty_values(payload) == []


@pytest.mark.parametrize(("line_amount_type", "xero_type", "tax_types"), [
    ("exclusive", "Exclusive", ["OUTPUT2"]),
    ("inclusive", "Inclusive", ["OUTPUT2"]),
    ("no_tax", "NoTax", [None]),
])
def test_line_amount_types_follow_the_sale(line_amount_type, xero_type, tax_types):
    # given a sale of each tax treatment
    sale = a_sale(line_amount_type=line_amount_type)

    # when it is mapped
    payload = mappers.invoice_payload(sale, [a_line()], **INVOICE_DEFAULTS)

    # then Xero is told how to read the amounts; a no-tax invoice carries no tax type
    assert payload["LineAmountTypes"] == xero_type
    assert [line.get("TaxType") for line in payload["LineItems"]] == tax_types


def test_an_inclusive_line_amount_is_the_price_paid():
    # given a tax-inclusive line: 3 x 33.3333 = 99.9999, less 12.5% = 87.4999125 -> 87.50
    sale = a_sale(line_amount_type="inclusive")
    line = a_line(quantity=Decimal("3"), unit_amount=Decimal("33.3333"), discount_rate=Decimal("12.5"))

    # when it is mapped
    [item] = mappers.invoice_payload(sale, [line], **INVOICE_DEFAULTS)["LineItems"]

    # then the line amount is ours, rounded once per line
    assert item["LineAmount"] == Decimal("87.50")
    assert item["DiscountRate"] == Decimal("12.5")


def test_no_discount_sends_no_discount_rate():
    # given a line with a zero discount
    line = a_line(discount_rate=Decimal("0"))

    # when it is mapped
    [item] = mappers.invoice_payload(a_sale(), [line], **INVOICE_DEFAULTS)["LineItems"]

    # then no DiscountRate is sent at all
    assert "DiscountRate" not in item


def test_without_a_due_date_the_sale_is_due_on_its_date():
    # given a sale without a due date (an approved Xero invoice needs one)
    payload = mappers.invoice_payload(a_sale(due_date=None), [a_line()], **INVOICE_DEFAULTS)

    # then it falls due on the sale's date, and no empty Reference is sent
    assert payload["DueDate"] == "2026-03-02"
    assert "Reference" not in payload


def test_shipping_without_a_shipping_account_goes_to_the_sales_account():
    # given no shipping account configured
    shipping = a_line(description="Courier", kind=SaleLine.Kind.SHIPPING)

    # when mapped
    [item] = mappers.invoice_payload(a_sale(), [shipping], **{**INVOICE_DEFAULTS, "shipping_account": ""})[
        "LineItems"]

    # then shipping is booked to sales rather than refused
    assert item["AccountCode"] == "200"


def test_an_existing_invoice_is_addressed_by_its_xero_id():
    payload = mappers.invoice_payload(a_sale(), [a_line()], **INVOICE_DEFAULTS,
                                      xero_id="9a8b7c6d-0000-4000-8000-000000000001")

    assert payload["InvoiceID"] == "9a8b7c6d-0000-4000-8000-000000000001"


def test_an_unmapped_tax_code_is_refused_saying_what_to_map():
    # given a line with a tax code that has no Xero tax type
    line = a_line(description="Gift card", tax_code="EXEMPT", tax_rate=Decimal("0"))

    # when it is mapped, then the error names the line, the code and where to fix it
    with pytest.raises(mappers.MappingError) as refused:
        mappers.invoice_payload(a_sale(), [line], **INVOICE_DEFAULTS)
    assert "Gift card" in str(refused.value)
    assert "'EXEMPT'" in str(refused.value)
    assert "map it on the Xero settings page" in str(refused.value)


@pytest.mark.parametrize(("kind", "what"), [(SaleLine.Kind.ITEM, "sales"), (SaleLine.Kind.SHIPPING, "shipping")])
def test_a_line_without_any_account_is_refused_saying_which_account_to_set(kind, what):
    # given no default sales or shipping account and no account on the line
    line = a_line(kind=kind)

    # when it is mapped, then the error says which default account to set
    with pytest.raises(mappers.MappingError, match=f"set the default {what} account on the Xero settings page"):
        mappers.invoice_payload(a_sale(), [line], **{**INVOICE_DEFAULTS, "sales_account": "",
                                                     "shipping_account": ""})


def test_a_tax_rate_that_differs_from_xeros_is_refused_before_the_totals_differ():
    # given a line charging 12.5% GST, while Xero's OUTPUT2 is 15%
    line = a_line(tax_rate=Decimal("12.5"))

    # when it is mapped, then it is refused with both rates named
    with pytest.raises(mappers.MappingError) as refused:
        mappers.invoice_payload(a_sale(), [line], **INVOICE_DEFAULTS)
    assert "12.5%" in str(refused.value)
    assert "OUTPUT2 is 15%" in str(refused.value)


def test_a_sale_without_lines_is_refused():
    with pytest.raises(mappers.MappingError, match="S-000001 has no lines"):
        mappers.invoice_payload(a_sale(), [], **INVOICE_DEFAULTS)


# --- Payments ----------------------------------------------------------------------------------------


def test_a_receipt_becomes_a_payment_whose_reference_leads_back_to_it():
    # given a card receipt with the card processor's reference
    receipt = Receipt(pk=17, amount=Decimal("89.40"), date=datetime.date(2026, 3, 2), reference="ch_3Nx")

    # when it is mapped
    payload = mappers.payment_payload(receipt, invoice_xero_id="9a8b7c6d-0000-4000-8000-000000000001",
                                      account_code="620")

    # then it pays the invoice into the configured account, with our key first in the reference
    assert payload == {
        "Invoice": {"InvoiceID": "9a8b7c6d-0000-4000-8000-000000000001"},
        "Account": {"Code": "620"},
        "Date": "2026-03-02",
        "Amount": Decimal("89.40"),
        "Reference": "WEB-R000017 ch_3Nx",
    }
    assert mappers.receipt_id_from_reference(payload["Reference"]) == 17


def test_a_receipt_without_a_reference_still_carries_its_key():
    receipt = Receipt(pk=17, amount=Decimal("5.00"), date=datetime.date(2026, 3, 2))

    payload = mappers.payment_payload(receipt, invoice_xero_id="x", account_code="620")

    assert payload["Reference"] == "WEB-R000017"


@pytest.mark.parametrize(("reference", "receipt_id"), [
    ("WEB-R000017", 17),
    ("WEB-R000017 ch_3Nx", 17),
    ("WEB-R1234567 more words", 1234567),
    ("Direct deposit from A Walker", None),
    ("WEB-RABC", None),
    ("WEB-R", None),
    ("XWEB-R000017", None),
    ("", None),
    (None, None),
])
def test_only_payments_our_push_made_lead_back_to_a_receipt(reference, receipt_id):
    assert mappers.receipt_id_from_reference(reference) == receipt_id


# --- Fingerprints and dates --------------------------------------------------------------------------


def test_the_payload_hash_ignores_xero_ids_but_not_content():
    # given an invoice payload before and after Xero gave it (and its contact) an id
    new = mappers.invoice_payload(a_sale(), [a_line()], **INVOICE_DEFAULTS)
    adopted = mappers.invoice_payload(a_sale(), [a_line()], **INVOICE_DEFAULTS,
                                      xero_id="9a8b7c6d-0000-4000-8000-000000000001")
    contact = mappers.contact_payload(Contact(pk=1, first_name="Ana"), name="Ana")
    contact_with_id = mappers.contact_payload(Contact(pk=1, first_name="Ana"), name="Ana",
                                              xero_id="0c5e2a3f-1b1b-4a4a-9c9c-123456789abc")

    # then learning the id is not a change worth sending
    assert mappers.payload_hash(new) == mappers.payload_hash(adopted)
    assert mappers.payload_hash(contact) == mappers.payload_hash(contact_with_id)
    # and key order does not matter
    assert mappers.payload_hash(dict(reversed(list(new.items())))) == mappers.payload_hash(new)
    # but any change of content is
    edited = mappers.invoice_payload(a_sale(), [a_line(quantity=Decimal("2"))], **INVOICE_DEFAULTS)
    renamed = mappers.contact_payload(Contact(pk=1, first_name="Ana"), name="Ana (ana@example.com)")
    assert mappers.payload_hash(edited) != mappers.payload_hash(new)
    assert mappers.payload_hash(renamed) != mappers.payload_hash(contact)


@pytest.mark.parametrize(("value", "expected"), [
    ("/Date(1439434356790+0000)/", datetime.datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=datetime.UTC)),
    ("/Date(1439434356790)/", datetime.datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=datetime.UTC)),
    ("2015-08-13T02:52:36", datetime.datetime(2015, 8, 13, 2, 52, 36, tzinfo=datetime.UTC)),
    ("2015-08-13T14:52:36+12:00", datetime.datetime(2015, 8, 13, 2, 52, 36, tzinfo=datetime.UTC)),
    (None, None),
    ("", None),
])
def test_xero_dates_are_read_as_aware_instants(value, expected):
    # given Xero's Microsoft-style date, or an ISO one (without an offset Xero means UTC)
    # when it is read
    parsed = mappers.parse_xero_datetime(value)

    # then the same instant, aware (so comparing it with our aware datetimes cannot raise)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_a_negative_or_padded_microsoft_date_is_still_read():
    assert mappers.parse_xero_datetime(" /Date(-86400000+0000)/ ") == datetime.datetime(
        1969, 12, 31, tzinfo=datetime.UTC)


# --- From Xero ---------------------------------------------------------------------------------------
# What a pull reads back. Rows are Xero's JSON as the gateway returns it (money as Decimal, dates in
# Xero's /Date(ms+0000)/ form); no database is touched (no db fixture: pytest-django would refuse).

MARCH_2 = "/Date(1772409600000+0000)/"  # 2026-03-02T00:00:00Z
MARCH_3_NOON = "/Date(1772539200000+0000)/"  # 2026-03-03T12:00:00Z


def test_a_xero_person_is_read_back_without_a_company_name():
    # given a Xero contact whose name is just the person's, with stray spaces
    row = {"ContactID": "c1", "Name": " Aroha Walker ", "FirstName": "Aroha ", "LastName": " Walker",
           "EmailAddress": " aroha@example.com "}

    # when it is read
    fields = mappers.contact_fields_from_xero(row)

    # then it is a person, trimmed, and every other field is blank rather than None
    assert fields == {
        "first_name": "Aroha", "last_name": "Walker", "company_name": "", "email": "aroha@example.com",
        "phone": "", "address_line1": "", "address_line2": "", "city": "", "region": "", "postcode": "",
        "country": "",
    }


def test_a_xero_name_other_than_the_persons_is_their_company():
    row = {"Name": "Kauri Timber Ltd", "FirstName": "Aroha", "LastName": "Walker"}
    assert mappers.contact_fields_from_xero(row)["company_name"] == "Kauri Timber Ltd"
    assert mappers.contact_fields_from_xero({"Name": "Kauri Timber Ltd"})["company_name"] == "Kauri Timber Ltd"


def test_the_name_we_gave_a_namesake_is_not_taken_back_as_a_company():
    # given the second David Smith, whom our push named "David Smith (david2@example.com)" in Xero
    row = {"Name": "David Smith (david2@example.com)", "FirstName": "David", "LastName": "Smith"}

    # then reading him back leaves him without a company
    fields = mappers.contact_fields_from_xero(row, our_xero_name="David Smith (david2@example.com)")
    assert fields["company_name"] == ""
    # but without that knowledge the name would look like a company's
    assert mappers.contact_fields_from_xero(row)["company_name"] == "David Smith (david2@example.com)"


def test_the_default_phone_and_the_postal_address_are_preferred_and_empty_ones_skipped():
    row = {
        "Name": "Aroha Walker",
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": ""},  # Xero always lists all four types, mostly empty
            {"PhoneType": "MOBILE", "PhoneNumber": "555 0199", "PhoneAreaCode": "021"},
            {"PhoneType": "DDI", "PhoneNumber": "555 0100", "PhoneCountryCode": "64", "PhoneAreaCode": "9"},
        ],
        "Addresses": [
            {"AddressType": "STREET", "AddressLine1": "1 Queen Street", "City": "Auckland"},
            {"AddressType": "POBOX", "AddressLine1": "PO Box 12", "AddressLine2": "Shortland Street",
             "City": "Auckland", "Region": "Auckland", "PostalCode": "1140", "Country": "New Zealand"},
        ],
    }

    fields = mappers.contact_fields_from_xero(row)

    # the DEFAULT phone is empty, so the MOBILE one; its parts joined as a person would write them
    assert fields["phone"] == "021 555 0199"
    assert (fields["address_line1"], fields["address_line2"], fields["city"], fields["region"],
            fields["postcode"], fields["country"]) == (
        "PO Box 12", "Shortland Street", "Auckland", "Auckland", "1140", "New Zealand")


def test_a_phone_of_another_type_is_used_when_no_preferred_one_has_a_number():
    row = {"Phones": [{"PhoneType": "FAX", "PhoneNumber": "555 0111", "PhoneCountryCode": "64"}],
           "Addresses": [{"AddressType": "DELIVERY", "AddressLine1": "2 Wharf Road"}]}
    fields = mappers.contact_fields_from_xero(row)
    assert (fields["phone"], fields["address_line1"]) == ("64 555 0111", "2 Wharf Road")


def a_xero_invoice(**fields) -> dict:
    return {
        "Type": "ACCREC", "InvoiceID": "9f0c1a4e-1111-4c3b-9d0f-000000000001", "InvoiceNumber": "S-000001",
        "Status": "AUTHORISED", "Date": MARCH_2, "DueDate": MARCH_2, "CurrencyCode": "NZD",
        "LineAmountTypes": "Inclusive", "SubTotal": Decimal("100.00"), "TotalTax": Decimal("15.00"),
        "Total": Decimal("115.00"), "AmountDue": Decimal("65.00"), "AmountPaid": Decimal("50.00"),
        "Reference": "Order 1", "UpdatedDateUTC": MARCH_3_NOON,
        "LineItems": [
            {"Description": "Merino beanie", "Quantity": Decimal("2"), "UnitAmount": Decimal("57.50"),
             "DiscountRate": Decimal("0"), "AccountCode": "200", "TaxType": "OUTPUT2", "ItemCode": "BEANIE",
             "TaxAmount": Decimal("15.00"), "LineAmount": Decimal("115.00")},
            {"Description": "Note only"},
        ],
        **fields,
    }


def test_a_xero_invoice_is_read_as_sale_fields_and_numbered_lines():
    fields, lines = mappers.invoice_fields_from_xero(a_xero_invoice())

    assert fields == {
        "number": "S-000001", "status": "AUTHORISED", "date": datetime.date(2026, 3, 2),
        "due_date": datetime.date(2026, 3, 2), "currency": "NZD", "line_amount_type": "inclusive",
        "subtotal": Decimal("100.00"), "total_tax": Decimal("15.00"), "total": Decimal("115.00"),
        "amount_due": Decimal("65.00"), "amount_paid": Decimal("50.00"), "amount_credited": Decimal("0.00"),
        "reference": "Order 1",
        "updated_in_xero_at": datetime.datetime(2026, 3, 3, 12, tzinfo=datetime.UTC),
    }
    assert lines == [
        {"position": 1, "description": "Merino beanie", "quantity": Decimal("2"),
         "unit_amount": Decimal("57.50"), "discount_rate": Decimal("0"), "account_code": "200",
         "tax_type": "OUTPUT2", "item_code": "BEANIE", "tax_amount": Decimal("15.00"),
         "line_amount": Decimal("115.00")},
        # a description-only line: zeros and blanks, never None
        {"position": 2, "description": "Note only", "quantity": Decimal("0"), "unit_amount": Decimal("0"),
         "discount_rate": Decimal("0"), "account_code": "", "tax_type": "", "item_code": "",
         "tax_amount": Decimal("0.00"), "line_amount": Decimal("0.00")},
    ]


def test_invoice_money_is_decimal_to_the_cent_even_from_floats_or_missing():
    fields, _ = mappers.invoice_fields_from_xero(a_xero_invoice(Total=114.999, AmountDue=None, SubTotal=100))
    assert (fields["total"], fields["amount_due"], fields["subtotal"]) == (
        Decimal("115.00"), Decimal("0.00"), Decimal("100.00"))
    assert all(isinstance(fields[key], Decimal) for key in ("total", "amount_due", "subtotal"))


@pytest.mark.parametrize(("xero_type", "ours"), [
    ("Exclusive", "exclusive"), ("Inclusive", "inclusive"), ("NoTax", "no_tax"), (None, "exclusive"),
])
def test_invoice_line_amount_types_are_read_back(xero_type, ours):
    fields, _ = mappers.invoice_fields_from_xero(a_xero_invoice(LineAmountTypes=xero_type))
    assert fields["line_amount_type"] == ours


def test_long_invoice_numbers_and_references_are_cut_to_what_the_shop_stores():
    fields, _ = mappers.invoice_fields_from_xero(a_xero_invoice(InvoiceNumber="N" * 300, Reference="R" * 300))
    assert (len(fields["number"]), len(fields["reference"])) == (255, 255)


def test_an_invoice_without_dates_or_lines_reads_as_blanks():
    fields, lines = mappers.invoice_fields_from_xero(
        a_xero_invoice(Date=None, DueDate=None, LineItems=None, CurrencyCode=None, Reference=None))
    assert (fields["date"], fields["due_date"], fields["currency"], fields["reference"], lines) == (
        None, None, "", "", [])


@pytest.mark.parametrize(("change", "message"), [
    ({"Status": "SOMETHING_NEW"}, "unknown invoice status 'SOMETHING_NEW'"),
    ({"Status": None}, "unknown invoice status None"),
    ({"InvoiceID": ""}, "the invoice has no InvoiceID"),
    ({"UpdatedDateUTC": None}, "the invoice has no UpdatedDateUTC"),
])
def test_an_invoice_we_cannot_read_is_refused_saying_why(change, message):
    with pytest.raises(ValueError, match=message):
        mappers.invoice_fields_from_xero(a_xero_invoice(**change))


def a_xero_payment(**fields) -> dict:
    return {"PaymentID": "7d1c0000-2222-4c3b-9d0f-000000000001", "Date": MARCH_2, "Amount": Decimal("50.00"),
            "Reference": "WEB-R000007 card", "Status": "AUTHORISED", "UpdatedDateUTC": MARCH_3_NOON,
            "Invoice": {"InvoiceID": "9f0c1a4e-1111-4c3b-9d0f-000000000001", "CurrencyCode": "NZD"}, **fields}


def test_a_xero_payment_is_read_as_receipt_fields():
    assert mappers.payment_fields_from_xero(a_xero_payment()) == {
        "amount": Decimal("50.00"), "currency": "NZD", "date": datetime.date(2026, 3, 2),
        "reference": "WEB-R000007 card", "status": "active",
        "updated_in_xero_at": datetime.datetime(2026, 3, 3, 12, tzinfo=datetime.UTC),
    }


def test_a_deleted_xero_payment_reads_as_deleted_and_missing_parts_as_blanks():
    fields = mappers.payment_fields_from_xero(a_xero_payment(Status="DELETED", Invoice=None, Reference=None,
                                                             Amount=12.346))
    assert (fields["status"], fields["currency"], fields["reference"], fields["amount"]) == (
        "deleted", "", "", Decimal("12.35"))


@pytest.mark.parametrize("change", [{"PaymentID": None}, {"Date": None}, {"UpdatedDateUTC": ""}])
def test_a_payment_we_cannot_read_is_refused(change):
    with pytest.raises(ValueError):
        mappers.payment_fields_from_xero(a_xero_payment(**change))


def test_validation_messages_are_xeros_messages_in_order_without_blanks():
    element = {"ValidationErrors": [{"Message": "Account code '999' is not a valid code."}, {"Message": ""},
                                    {"Detail": "no message"}, {"Message": "Email address must be valid."}]}
    assert mappers.validation_messages(element) == [
        "Account code '999' is not a valid code.", "Email address must be valid."]
    assert mappers.validation_messages({}) == []
    assert mappers.validation_messages({"ValidationErrors": None}) == []


def test_a_distinguishable_name_always_fits_xeros_255_characters_and_keeps_what_tells_it_apart():
    # given two companies whose names fill all of Xero's 255 characters
    long_name = "Aotearoa Merino Wholesale " + "x" * 229
    first = Contact(pk=7, company_name=long_name, email="orders@first.example")
    second = Contact(pk=8, company_name=long_name, email="orders@second.example")
    assert len(first.display_name) == 255

    # when each needs a name no other active Xero contact has
    names = [mappers.xero_name_candidates(contact) for contact in (first, second)]

    # then every candidate fits, the name is cut and the email or our key is kept whole
    assert all(len(name) <= 255 for candidates in names for name in candidates)
    assert mappers.distinguishable_name(first).endswith(" (orders@first.example)")
    assert mappers.distinguishable_name(second).endswith(" (orders@second.example)")
    assert mappers.distinguishable_name(first) != mappers.distinguishable_name(second)
    assert names[0][2].endswith(" (WEB-C000007)") and names[0][2].startswith("Aotearoa Merino Wholesale x")


def test_counts_read_as_the_admin_words_them_whatever_the_keys():
    from collections import Counter

    from xero_sync import wording
    from xero_sync.models import RecordKind

    # a run's counter is added to under RecordKind members and plain strings alike (they are one key)
    counts = Counter()
    counts[RecordKind.CONTACT] += 1
    counts["contact"] += 1
    counts["sale"] += 1
    assert wording.counted(counts) == "2 contacts, 1 sale"
    assert wording.counted({"sale": 1, RecordKind.CONTACT: 1}) == "1 contact, 1 sale"  # a sync's order
    assert wording.counted({"receipt": 3, RecordKind.SALE: 0}) == "3 receipts"
    assert wording.counted({}) == "nothing"
    assert wording.counted(None, nothing="-") == "-"


# --- Credit notes and refunds ---------------------------------------------------------------------------


def test_a_xero_credit_note_is_read_with_its_allocations_to_invoices():
    fields, allocations = mappers.credit_note_fields_from_xero({
        "Type": "ACCRECCREDIT", "CreditNoteID": "7d3f0c52-1c89-4d83-9a36-0c8c0c4b1f1e", "CreditNoteNumber": "CN-000042",
        "Status": "AUTHORISED", "Date": "/Date(1764633600000+0000)/", "LineAmountTypes": "Inclusive",
        "SubTotal": 86.95, "TotalTax": 13.04, "Total": 99.99, "RemainingCredit": 40.0, "CurrencyCode": "NZD",
        "UpdatedDateUTC": "/Date(1764663600000+0000)/",
        "Allocations": [
            {"Invoice": {"InvoiceID": "1b0c6a43-5d7c-4c6f-8d8b-2e4f8a1d9c10"}, "Amount": 59.99,
             "Date": "/Date(1764633600000+0000)/"},
            {"Invoice": {"InvoiceID": "1b0c6a43-5d7c-4c6f-8d8b-2e4f8a1d9c10"}, "Amount": 5.0, "IsDeleted": True},
        ],
    })
    assert (fields["number"], fields["status"], fields["line_amount_type"]) == ("CN-000042", "AUTHORISED", "inclusive")
    assert (fields["total"], fields["total_tax"], fields["remaining_credit"]) == (
        Decimal("99.99"), Decimal("13.04"), Decimal("40.00"))
    assert allocations == [{"invoice_xero_id": "1b0c6a43-5d7c-4c6f-8d8b-2e4f8a1d9c10", "amount": Decimal("59.99"),
                            "date": datetime.date(2025, 12, 2)}]  # the deleted allocation is not Xero's any more


def test_a_pulled_refund_is_told_from_a_payment_on_an_invoice_in_either_shape_xero_sends():
    credit_note = "7d3f0c52-1c89-4d83-9a36-0c8c0c4b1f1e"
    assert mappers.payment_credit_note_id({"CreditNote": {"CreditNoteID": credit_note}}) == credit_note
    assert mappers.payment_credit_note_id(
        {"PaymentType": "ARCREDITPAYMENT", "Invoice": {"InvoiceID": credit_note, "Type": "ACCRECCREDIT"}}) == credit_note
    assert mappers.payment_credit_note_id({"PaymentType": "ACCRECPAYMENT", "Invoice": {"InvoiceID": "x"}}) is None


def test_a_refunds_payment_reference_leads_back_to_its_credit_note_number():
    assert mappers.refund_number_from_reference("Refund CN-000042") == "CN-000042"
    assert mappers.refund_number_from_reference("WEB-R000017 ch_1") is None
    assert mappers.refund_number_from_reference("") is None
