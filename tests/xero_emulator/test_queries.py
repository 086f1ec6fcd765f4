"""Reading lists: paging and pageSize, If-Modified-Since, the ID/number/status filters, where, order,
summaryOnly; the read-only settings endpoints; the envelope; 404 and bad JSON (§3, §4)."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest

from .helpers import body, invoice, line


def names(response) -> list[str]:
    return [c["Name"] for c in body(response)["Contacts"]]


def updated(record: dict) -> datetime:
    return datetime.fromtimestamp(int(record["UpdatedDateUTC"][6:19]) / 1000, UTC)


def test_lists_come_in_xeros_envelope(xero):
    envelope = body(xero.get("/Contacts"))
    assert uuid.UUID(envelope["Id"])
    assert (envelope["Status"], envelope["ProviderName"]) == ("OK", "Xero Emulator Demo App")
    assert re.fullmatch(r"/Date\(\d{13}\)/", envelope["DateTimeUTC"])
    assert envelope["Contacts"] == []


def test_paging_with_page_and_page_size(xero):
    for number in range(25):
        xero.create_contact(Name=f"Customer {number:02d}")

    first = body(xero.get("/Contacts", params={"page": 1, "pageSize": 10}))
    last = body(xero.get("/Contacts", params={"page": 3, "pageSize": 10}))

    assert first["pagination"] == {"page": 1, "pageSize": 10, "pageCount": 3, "itemCount": 25}
    assert [c["Name"] for c in first["Contacts"]] == [f"Customer {n:02d}" for n in range(10)]
    assert len(last["Contacts"]) == 5
    assert body(xero.get("/Contacts", params={"page": 4, "pageSize": 10}))["Contacts"] == []


def test_page_size_defaults_to_100_and_stops_at_1000(xero):
    xero.create_contact(Name="Ann")
    assert body(xero.get("/Contacts", params={"page": 1}))["pagination"]["pageSize"] == 100
    assert body(xero.get("/Contacts", params={"page": 1, "pageSize": 5000}))["pagination"]["pageSize"] == 1000


def test_without_page_every_record_comes_back_unpaged(xero):
    xero.put("/Contacts", {"Contacts": [{"Name": f"Customer {number}"} for number in range(120)]})
    unpaged = body(xero.get("/Contacts"))
    assert len(unpaged["Contacts"]) == 120 and "pagination" not in unpaged


def test_an_invalid_page_is_a_400(xero):
    assert xero.get("/Contacts", params={"page": "two"}).status_code == 400
    assert xero.get("/Contacts", params={"page": 0}).status_code == 400


def test_invoice_line_items_come_with_paged_lists_and_single_invoices_only(xero):
    saved = xero.create_invoice()
    assert "LineItems" not in body(xero.get("/Invoices"))["Invoices"][0]
    assert body(xero.get("/Invoices", params={"page": 1}))["Invoices"][0]["LineItems"]
    assert body(xero.get(f"/Invoices/{saved['InvoiceID']}"))["Invoices"][0]["LineItems"]


def test_if_modified_since_returns_records_changed_since_accurate_to_the_second(emulator, xero):
    # Given an old contact and one changed ten seconds later
    xero.create_contact(Name="Old")
    emulator.clock.advance(10)
    new = xero.create_contact(Name="New")
    since = updated(new).replace(microsecond=0)  # the second it changed in

    # Then the ISO form xero-python sends, and the RFC 1123 form, both find only the new one
    assert names(xero.get("/Contacts", headers={"If-Modified-Since": since.isoformat()})) == ["New"]
    assert names(
        xero.get("/Contacts", headers={"If-Modified-Since": format_datetime(since, usegmt=True)})
    ) == ["New"]
    # A naive timestamp is UTC
    assert names(
        xero.get("/Contacts", headers={"If-Modified-Since": since.replace(tzinfo=None).isoformat()})
    ) == ["New"]
    # One second later finds nothing; an unparseable header is ignored
    later = (since + timedelta(seconds=1)).isoformat()
    assert names(xero.get("/Contacts", headers={"If-Modified-Since": later})) == []
    assert len(names(xero.get("/Contacts", headers={"If-Modified-Since": "yesterday"}))) == 2


def test_if_modified_since_sees_payments_move_the_invoice(emulator, xero):
    saved = xero.create_invoice(lines=[line(quantity=1, unit_amount=100)])
    emulator.clock.advance(10)
    since = emulator.clock.now().replace(microsecond=0).isoformat()
    assert body(xero.get("/Invoices", headers={"If-Modified-Since": since}))["Invoices"] == []

    xero.pay(saved["InvoiceID"], 10)

    changed = body(xero.get("/Invoices", headers={"If-Modified-Since": since}))["Invoices"]
    assert [i["InvoiceID"] for i in changed] == [saved["InvoiceID"]]
    assert len(body(xero.get("/Payments", headers={"If-Modified-Since": since}))["Payments"]) == 1


def test_ids_numbers_contacts_and_statuses_filters(xero):
    ann = xero.create_contact(Name="Ann")
    bob = xero.create_contact(Name="Bob")
    first = xero.create_invoice(InvoiceNumber="WEB-1", Contact={"ContactID": ann["ContactID"]})
    second = xero.create_invoice(
        InvoiceNumber="WEB-2", Contact={"ContactID": bob["ContactID"]}, Status="DRAFT"
    )
    xero.create_invoice(InvoiceNumber="WEB-3", Contact={"ContactID": bob["ContactID"]})

    def numbers(**params):
        return [i["InvoiceNumber"] for i in body(xero.get("/Invoices", params=params))["Invoices"]]

    assert numbers(IDs=f"{first['InvoiceID']},{second['InvoiceID'].upper()}") == ["WEB-1", "WEB-2"]
    assert numbers(InvoiceNumbers="WEB-1,web-3") == ["WEB-1", "WEB-3"]
    assert numbers(ContactIDs=bob["ContactID"]) == ["WEB-2", "WEB-3"]
    assert numbers(Statuses="DRAFT") == ["WEB-2"]
    assert numbers(Statuses="AUTHORISED,DRAFT", ContactIDs=bob["ContactID"]) == ["WEB-2", "WEB-3"]
    assert names(xero.get("/Contacts", params={"IDs": bob["ContactID"]})) == ["Bob"]


def test_where_clauses(xero):
    ann = xero.create_contact(Name="Ann Smith", ContactNumber="CUST-1", EmailAddress="ann@example.com")
    xero.create_contact(Name="Bob Jones", ContactNumber="CUST-2", EmailAddress="bob@example.com")
    xero.create_invoice(Contact={"ContactID": ann["ContactID"]})
    xero.put(
        "/Invoices",
        {
            "Invoices": [
                {
                    "Type": "ACCPAY",
                    "Contact": {"Name": "Supplier"},
                    "Status": "DRAFT",
                    "LineItems": [line(account_code="400", tax_type="INPUT2")],
                }
            ]
        },
    )

    def where(path, clause, key):
        response = xero.get(path, params={"where": clause})
        assert response.status_code == 200, response.text
        return [item[key] for item in body(response)[path.strip("/")]]

    assert where("/Contacts", "IsCustomer==true", "Name") == ["Ann Smith"]
    assert where("/Contacts", 'ContactNumber=="CUST-2"', "Name") == ["Bob Jones"]
    assert where("/Contacts", 'EmailAddress=="ANN@example.com"', "Name") == ["Ann Smith"]
    assert where("/Contacts", 'IsCustomer==false && ContactNumber=="CUST-2"', "Name") == ["Bob Jones"]
    assert where("/Contacts", 'Name.Contains("smith") OR Name.StartsWith("Sup")', "Name") == [
        "Ann Smith",
        "Supplier",
    ]
    assert where("/Invoices", 'Type=="ACCREC"', "Type") == ["ACCREC"]
    assert where("/Invoices", 'Type=="ACCPAY" && Status=="DRAFT"', "Type") == ["ACCPAY"]
    assert where("/Invoices", f'Contact.ContactID==Guid("{ann["ContactID"]}")', "Type") == ["ACCREC"]
    assert where("/Invoices", "Total >= 11.5 && Date <= DateTime(2026, 1, 2)", "Total") == [Decimal("11.50")]


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ('Nickname=="Ann"', "No property or field 'Nickname' exists in type 'Contact'"),
        ('Name.Matches("A.*")', "No applicable method 'Matches' exists in type 'Contact'"),
        ('Name=="Ann', "Syntax error at position 6 in 'Name==\"Ann'"),
        ('IsCustomer=="yes"', "Operator '==' incompatible with operand types 'bool' and 'str'"),
    ],
)
def test_an_unsupported_where_clause_is_refused_not_ignored(xero, clause, message):
    xero.create_contact(Name="Ann")
    response = xero.get("/Contacts", params={"where": clause})
    assert response.status_code == 400
    assert body(response) == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def test_order(emulator, xero):
    xero.create_contact(Name="Charlie")
    emulator.clock.advance(1)
    xero.create_contact(Name="alice")
    emulator.clock.advance(1)
    xero.create_contact(Name="Bob")

    assert names(xero.get("/Contacts", params={"order": "Name"})) == ["alice", "Bob", "Charlie"]
    assert names(xero.get("/Contacts", params={"order": "UpdatedDateUTC DESC"})) == [
        "Bob",
        "alice",
        "Charlie",
    ]
    assert names(xero.get("/Contacts", params={"order": "UpdatedDateUTC ASC"})) == ["Charlie", "alice", "Bob"]
    assert xero.get("/Contacts", params={"order": "Shoe Size"}).status_code == 400


def test_summary_only_drops_the_details(xero):
    xero.create_contact(Name="Ann", Addresses=[{"AddressType": "STREET", "City": "Wellington"}])
    xero.create_invoice()
    contact = body(xero.get("/Contacts", params={"summaryOnly": "true"}))["Contacts"][0]
    assert "Addresses" not in contact and contact["Name"] == "Ann"
    sale = body(xero.get("/Invoices", params={"summaryOnly": "true", "page": 1}))["Invoices"][0]
    assert "LineItems" not in sale and "Payments" not in sale and sale["Total"] == Decimal("11.50")


def test_search_term(xero):
    xero.create_contact(Name="Ann Smith", EmailAddress="ann@shop.example")
    xero.create_contact(Name="Bob")
    assert names(xero.get("/Contacts", params={"searchTerm": "SHOP.example"})) == ["Ann Smith"]


def test_accounts_tax_rates_and_organisation(xero):
    banks = body(xero.get("/Accounts", params={"where": 'Type=="BANK"'}))["Accounts"]
    assert [(a["Code"], a["Name"]) for a in banks] == [
        ("090", "Business Bank Account"),
        ("091", "Business Savings Account"),
    ]
    enabled = body(xero.get("/Accounts", params={"where": "EnablePaymentsToAccount==true"}))["Accounts"]
    assert [a["Code"] for a in enabled] == ["620"]
    accounts = {a["Code"]: a for a in body(xero.get("/Accounts"))["Accounts"]}
    assert set(accounts) == {"090", "091", "200", "205", "260", "400", "610", "620", "880"}
    assert (accounts["880"]["Status"], accounts["205"]["Name"]) == ("ARCHIVED", "Shipping income")

    rates = {t["TaxType"]: t for t in body(xero.get("/TaxRates"))["TaxRates"]}
    assert (rates["OUTPUT2"]["Name"], rates["OUTPUT2"]["EffectiveRate"]) == (
        "15% GST on Income",
        Decimal("15.0000"),
    )
    assert set(rates) == {"OUTPUT2", "INPUT2", "NONE", "ZERORATEDOUTPUT"}

    organisation = body(xero.get("/Organisation"))["Organisations"][0]
    assert (organisation["Name"], organisation["BaseCurrency"], organisation["CountryCode"]) == (
        "Demo Company (NZ)",
        "NZD",
        "NZ",
    )
    assert organisation["OrganisationID"] == xero.tenant_id


def test_unknown_paths_are_404(emulator, xero):
    assert xero.get("/Widgets").status_code == 404
    assert xero.request("DELETE", "/Invoices").status_code == 404
    assert xero.session.get(emulator.base_url + "/no/such/thing", timeout=5).status_code == 404


def test_a_body_that_is_not_json_is_a_400(xero):
    response = xero.put("/Contacts", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert body(response) == {
        "ErrorNumber": 14,
        "Type": "PostDataInvalidException",
        "Message": "JSON request body could not be read",
    }


@pytest.mark.parametrize(("element", "detail"), [
    ("Ann", 'Error converting value "Ann" to type \'Contact\'. Path \'Contacts[1]\'.'),
])
def test_a_contact_xero_cannot_read_refuses_the_whole_request_and_saves_nothing(emulator, xero, element, detail):
    response = xero.put("/Contacts", {"Contacts": [{"Name": "Bob"}, element]}, params={"summarizeErrors": "false"})

    assert response.status_code == 400
    assert body(response) == {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                              "Message": f"JSON request body could not be read, {detail}"}
    assert emulator.contacts() == []


@pytest.mark.parametrize(("unit_amount", "detail"), [
    (1e30, "Value was either too large or too small for a Decimal."),
    ("ten", "Could not convert string to decimal: ten."),
])
def test_an_invoice_xero_cannot_read_refuses_the_whole_batch_whatever_summarize_errors_says(
        emulator, xero, unit_amount, detail):
    batch = {"Invoices": [invoice(), invoice(lines=[line(), line(unit_amount=unit_amount)])]}
    response = xero.put("/Invoices", batch, params={"summarizeErrors": "false"})

    assert response.status_code == 400
    assert body(response) == {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                              "Message": f"JSON request body could not be read, {detail} "
                                         "Path 'Invoices[1].LineItems[1].UnitAmount'."}
    assert emulator.invoices() == []
