"""The Xero contract checker catches what it must (spec: ../shared/xero-openapi/xero_accounting.yaml)."""

import copy
import textwrap

import pytest

from tests.support import XERO_SPEC_PATH, need
from tests.xero_contract import XeroContract

pytestmark = pytest.mark.spec

SPEC_MISSING = "Xero OpenAPI spec ../shared/xero-openapi/xero_accounting.yaml is not available"
BASE = "/api.xro/2.0"
INVOICE_ID = "243216c5-369e-4056-ac67-05388f86dc81"
CONTACT_ID = "025867f1-d741-4d6b-b1af-9ac774b59ba7"
PAYMENT_ID = "0d666415-cf77-43fa-80c7-56775591d426"
ACCOUNT_ID = "ceef66a5-a545-413b-9312-78a53caadbc4"


def invoices_response() -> dict:
    """A GET /Invoices?page=1 body as Xero sends it (envelope, pagination, MS-JSON dates)."""
    return {
        "Id": "3c7ab61a-3a5e-4a3f-9c9e-4d3c2b5c1a10",
        "Status": "OK",
        "ProviderName": "Xero Shop Sync",
        "DateTimeUTC": "/Date(1752400000000)/",
        "pagination": {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 1},
        "Warnings": [],
        "Invoices": [
            {
                "Type": "ACCREC",
                "InvoiceID": INVOICE_ID,
                "InvoiceNumber": "WEB-10042",
                "Reference": "Order 10042",
                "Payments": [
                    {
                        "PaymentID": PAYMENT_ID,
                        "Date": "/Date(1752364800000+0000)/",
                        "Amount": 50.0,
                        "Reference": "Stripe ch_123",
                        "CurrencyRate": 1.0,
                        "HasAccount": False,
                        "HasValidationErrors": False,
                    }
                ],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "AmountDue": 65.0,
                "AmountPaid": 50.0,
                "AmountCredited": 0.0,
                "CurrencyRate": 1.0,
                "IsDiscounted": False,
                "HasAttachments": False,
                "InvoiceAddresses": [],
                "HasErrors": False,
                "InvoicePaymentServices": [],
                "Contact": {
                    "ContactID": CONTACT_ID,
                    "ContactNumber": "CUST-0042",
                    "ContactStatus": "ACTIVE",
                    "Name": "Ada Lovelace",
                    "FirstName": "Ada",
                    "LastName": "Lovelace",
                    "EmailAddress": "ada@example.com",
                    "Addresses": [
                        {"AddressType": "STREET", "City": "London", "PostalCode": "N1 9GU", "Country": "GB"}
                    ],
                    "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "07700 900123"}],
                    "ContactGroups": [],
                    "ContactPersons": [],
                    "IsSupplier": False,
                    "IsCustomer": True,
                    "HasValidationErrors": False,
                },
                "DateString": "2026-07-13T00:00:00",
                "Date": "/Date(1752364800000+0000)/",
                "DueDateString": "2026-07-27T00:00:00",
                "DueDate": "/Date(1753574400000+0000)/",
                "Status": "AUTHORISED",
                "LineAmountTypes": "Exclusive",
                "LineItems": [
                    {
                        "LineItemID": "5f7a6c3e-9d4b-4b8e-8a51-0c2d3e4f5a6b",
                        "ItemCode": "MUG-01",
                        "Description": "Enamel mug",
                        "UnitAmount": 25.0,
                        "TaxType": "OUTPUT2",
                        "TaxAmount": 10.0,
                        "LineAmount": 50.0,
                        "AccountCode": "200",
                        "Tracking": [],
                        "Quantity": 2,
                    },
                    {
                        "LineItemID": "6a8b7d4f-0e5c-4c9f-9b62-1d3e4f5a6b7c",
                        "Description": "Shipping",
                        "UnitAmount": 50.0,
                        "TaxType": "OUTPUT2",
                        "TaxAmount": 5.0,
                        "LineAmount": 50.0,
                        "AccountCode": "260",
                        "Tracking": [],
                        "Quantity": 1.0,
                    },
                ],
                "SubTotal": 100.0,
                "TotalTax": 15.0,
                "Total": 115.0,
                "UpdatedDateUTC": "/Date(1752400000000+0000)/",
                "CurrencyCode": "GBP",
            }
        ],
    }


def put_invoices_request() -> dict:
    """A PUT /Invoices body as xero-python serialises it (incl. HasErrors/HasAttachments false)."""
    return {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": CONTACT_ID},
                "LineItems": [
                    {
                        "Description": "Enamel mug",
                        "Quantity": 2.0,
                        "UnitAmount": 25.0,
                        "AccountCode": "200",
                        "TaxType": "OUTPUT2",
                        "ItemCode": "MUG-01",
                    }
                ],
                "Date": "/Date(1752364800000)/",
                "DueDate": "/Date(1753574400000)/",
                "LineAmountTypes": "Exclusive",
                "InvoiceNumber": "WEB-10042",
                "Reference": "Order 10042",
                "CurrencyCode": "GBP",
                "Status": "AUTHORISED",
                "HasAttachments": False,
                "HasErrors": False,
                # read-only fields echoed back by clients must not be rejected
                "Total": 50.0,
                "UpdatedDateUTC": "/Date(1752400000000+0000)/",
            }
        ]
    }


def put_payments_request() -> dict:
    return {
        "Payments": [
            {
                "Invoice": {"InvoiceID": INVOICE_ID},
                "Account": {"Code": "090"},
                "Date": "2026-07-13",
                "Amount": 115.0,
                "Reference": "Stripe ch_123",
                "HasAccount": False,
                "HasValidationErrors": False,
            }
        ]
    }


def error_400_body() -> dict:
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {
                "Type": "ACCREC",
                "InvoiceID": "00000000-0000-0000-0000-000000000000",
                "InvoiceNumber": "WEB-10042",
                "Contact": {"ContactID": CONTACT_ID, "Name": "Ada Lovelace"},
                "HasErrors": True,
                "ValidationErrors": [{"Message": "Invoice # must be unique."}],
            }
        ],
    }


def test_valid_invoices_response_passes():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec and a realistic paged GET /Invoices body (envelope fields are not in the schema)
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = invoices_response()
    # when it is checked as the 200 response of GET /Invoices?page=1
    errors = contract.response_errors("GET", f"{BASE}/Invoices?page=1&pageSize=100", 200, body)
    # then it passes, also for the single-invoice GET and the PUT/POST responses
    assert errors == []
    assert contract.response_errors("GET", f"/Invoices/{INVOICE_ID}", 200, body) == []
    assert contract.response_errors("PUT", "/Invoices", 200, body) == []
    assert contract.response_errors("POST", f"/Invoices/{INVOICE_ID}", 200, body) == []


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda inv: inv.update(Total="abc"), "$.Invoices[0].Total", "is not of type 'number'"),
        (lambda inv: inv.update(LineItems={}), "$.Invoices[0].LineItems", "is not of type 'array'"),
        (lambda inv: inv.update(HasErrors="false"), "$.Invoices[0].HasErrors", "is not of type 'boolean'"),
        (lambda inv: inv.update(Contact="CUST-0042"), "$.Invoices[0].Contact", "is not of type 'object'"),
        (
            lambda inv: inv["LineItems"][0].update(Quantity="2"),
            "$.Invoices[0].LineItems[0].Quantity",
            "is not of type 'number'",
        ),
        (lambda inv: inv.update(Date=1752364800000), "$.Invoices[0].Date", "is not of type 'string'"),
        (lambda inv: inv.update(CurrencyCode="XXX"), "$.Invoices[0].CurrencyCode", "is not one of"),
    ],
    ids=[
        "Total-string",
        "LineItems-object",
        "HasErrors-string",
        "Contact-string",
        "Quantity-string",
        "Date-number",
        "CurrencyCode-unknown",
    ],
)
def test_wrong_type_in_invoices_response_fails_naming_the_field(mutate, field, fragment):
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a valid invoices body with one field broken
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = invoices_response()
    mutate(body["Invoices"][0])
    # when it is checked
    errors = contract.response_errors("GET", "/Invoices", 200, body)
    # then exactly that field is reported
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{field}: "), errors
    assert fragment in errors[0]


def test_wrong_pagination_type_fails():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a body whose pagination page is a string
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = invoices_response()
    body["pagination"]["page"] = "1"
    # when it is checked
    errors = contract.response_errors("GET", "/Invoices", 200, body)
    # then the pagination field is named
    assert errors == ["$.pagination.page: '1' is not of type 'integer'"]


def test_invalid_enum_fails():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given an invoice whose Status is not one of Xero's invoice statuses
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = invoices_response()
    body["Invoices"][0]["Status"] = "PENDING"
    # when it is checked as a response and as a request
    response_errors = contract.response_errors("GET", "/Invoices", 200, body)
    request_errors = contract.request_errors("POST", "/Invoices", {"Invoices": body["Invoices"]})
    # then both name the field and the bad value
    for errors in (response_errors, request_errors):
        assert len(errors) == 1, errors
        assert errors[0].startswith("$.Invoices[0].Status: 'PENDING' is not one of ['DRAFT'")


def test_valid_put_invoices_request_passes():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a PUT /Invoices body with read-only fields echoed back
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = put_invoices_request()
    # when it is checked
    errors = contract.request_errors("PUT", f"{BASE}/Invoices?summarizeErrors=false&unitdp=4", body)
    # then it passes
    assert errors == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p.update(Amount="115.00"), "$.Payments[0].Amount: '115.00' is not of type 'number'"),
        (
            lambda p: p.update(Invoice=INVOICE_ID),
            f"$.Payments[0].Invoice: '{INVOICE_ID}' is not of type 'object'",
        ),
        (
            lambda p: p.update(IsReconciled="true"),
            "$.Payments[0].IsReconciled: 'true' is not of type 'boolean'",
        ),
        (lambda p: p["Account"].update(Code=90), "$.Payments[0].Account.Code: 90 is not of type 'string'"),
    ],
    ids=["Amount-string", "Invoice-string", "IsReconciled-string", "AccountCode-number"],
)
def test_put_payments_request_with_invalid_field_type_fails(mutate, expected):
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a valid PUT /Payments body
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = put_payments_request()
    assert contract.request_errors("PUT", "/Payments", body) == []
    # when one field gets the wrong type
    mutate(body["Payments"][0])
    errors = contract.request_errors("PUT", f"{BASE}/Payments?summarizeErrors=false", body)
    # then it is reported by path
    assert errors == [expected]


def test_single_payment_post_and_delete_payment_bodies():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec: POST /Payments takes one Payment, POST /Payments/{id} a PaymentDelete
    contract = XeroContract.load(XERO_SPEC_PATH)
    payment = put_payments_request()["Payments"][0]
    # when the bodies the SDK sends are checked
    single = contract.request_errors("POST", "/Payments", payment)
    delete = contract.request_errors("POST", f"/Payments/{PAYMENT_ID}", {"Status": "DELETED"})
    # spec's own example for deletePayment is wrapped in "Payments" and lacks the required Status
    wrapped = contract.request_errors(
        "POST", f"/Payments/{PAYMENT_ID}", {"Payments": [{"Status": "DELETED"}]}
    )
    # then the SDK bodies pass and the wrapped one fails
    assert single == []
    assert delete == []
    assert wrapped == ["$: 'Status' is a required property"]


def test_error_400_body_validates():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a Xero ValidationException body
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = error_400_body()
    # when it is checked as the 400 response of the writes we use
    paths = [
        ("PUT", "/Invoices"),
        ("POST", "/Invoices"),
        ("POST", f"/Invoices/{INVOICE_ID}"),
        ("PUT", "/Contacts"),
        ("POST", "/Contacts"),
        ("POST", f"/Contacts/{CONTACT_ID}"),
        ("PUT", "/Payments"),
        ("POST", "/Payments"),
        ("POST", f"/Payments/{PAYMENT_ID}"),
    ]
    # then it validates everywhere, and a wrongly typed ErrorNumber does not
    for method, path in paths:
        assert contract.response_errors(method, path, 400, body) == [], (method, path)
    broken = copy.deepcopy(body)
    broken["ErrorNumber"] = "10"
    broken["Elements"][0]["ValidationErrors"] = {"Message": "x"}
    assert contract.response_errors("PUT", "/Invoices", 400, broken) == [
        "$.Elements[0].ValidationErrors: {'Message': 'x'} is not of type 'array'",
        "$.ErrorNumber: '10' is not of type 'integer'",
    ]


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/Contacts", "getContacts"),
        ("PUT", "/Contacts", "createContacts"),
        ("POST", "/Contacts", "updateOrCreateContacts"),
        ("POST", f"/Contacts/{CONTACT_ID}", "updateContact"),
        ("GET", f"/Contacts/{CONTACT_ID}", "getContact"),
        ("GET", "/Contacts/CUST-0042", "getContactByContactNumber"),
        ("GET", "/Invoices", "getInvoices"),
        ("PUT", "/Invoices", "createInvoices"),
        ("POST", "/Invoices", "updateOrCreateInvoices"),
        ("POST", f"/Invoices/{INVOICE_ID}", "updateInvoice"),
        ("GET", f"/Invoices/{INVOICE_ID}", "getInvoice"),
        ("GET", "/Invoices/WEB-10042", "getInvoice"),
        ("GET", "/Payments", "getPayments"),
        ("PUT", "/Payments", "createPayments"),
        ("POST", "/Payments", "createPayment"),
        ("POST", f"/Payments/{PAYMENT_ID}", "deletePayment"),
        ("GET", f"/Payments/{PAYMENT_ID}", "getPayment"),
        ("GET", "/Accounts", "getAccounts"),
        ("GET", "/TaxRates", "getTaxRates"),
        ("GET", "/Organisation", "getOrganisations"),
        ("GET", f"/Invoices/{INVOICE_ID}/pdf", "getInvoiceAsPdf"),
        ("GET", "/Reports/BalanceSheet", "getReportBalanceSheet"),
        ("GET", "/Journals/42", "getJournalByNumber"),
    ],
)
def test_operation_for_maps_the_paths_we_use(method, path, operation_id):
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec
    contract = XeroContract.load(XERO_SPEC_PATH)
    # when the path is looked up bare, with the base path, as a full URL and with a query string
    forms = [
        path,
        f"{BASE}{path}",
        f"https://api.xero.com{BASE}{path}",
        f"{BASE}{path}?page=2&where=x%3D%3D1",
    ]
    # then every form maps to the same operation
    assert [contract.operation_for(method, form) for form in forms] == [operation_id] * len(forms)
    assert contract.operation_for(method.lower(), path) == operation_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/connect/token"),
        ("POST", "https://identity.xero.com/connect/token"),
        ("GET", "/connections"),
        ("GET", "https://api.xero.com/connections"),
        ("DELETE", "/connections/7d1f7b8b-2a5e-4b44-8f2f-0a6a2b1c9d3e"),
        ("DELETE", f"{BASE}/Invoices/{INVOICE_ID}"),
        ("PUT", f"{BASE}/Payments/{PAYMENT_ID}"),
        ("GET", f"{BASE}/Invoicez"),
        ("GET", f"{BASE}/"),
    ],
)
def test_operation_for_returns_none_outside_the_spec(method, path):
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec, which has no identity endpoints
    contract = XeroContract.load(XERO_SPEC_PATH)
    # when a path or method it does not define is looked up
    # then there is no operation
    assert contract.operation_for(method, path) is None


def test_boolean_default_quirk_does_not_break_loading():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec, whose boolean defaults are the string "false"
    contract = XeroContract.load(XERO_SPEC_PATH)
    if contract.spec_version == "16.1.0":
        assert len(contract.boolean_default_quirks) == 23
        assert "#/components/schemas/Invoice/properties/HasErrors" in contract.boolean_default_quirks
    # when booleans are validated
    body = invoices_response()
    ok = contract.response_errors("GET", "/Invoices", 200, body)
    body["Invoices"][0]["HasAttachments"] = "false"
    bad = contract.response_errors("GET", "/Invoices", 200, body)
    # then real booleans pass, the string "false" does not, and no default survives conversion
    assert ok == []
    assert bad == ["$.Invoices[0].HasAttachments: 'false' is not of type 'boolean'"]
    invoice_schema = contract.document["components"]["schemas"]["Invoice"]
    assert all("default" not in prop for prop in invoice_schema["properties"].values())


def test_nullable_field_accepts_null(tmp_path):
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a spec shaped like Xero's with nullable properties (16.1.0 itself declares none)
    spec = tmp_path / "nullable.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            openapi: 3.0.0
            info: {title: t, version: "1"}
            servers: [{url: "https://api.xero.com/api.xro/2.0"}]
            paths:
              /Things:
                put:
                  operationId: createThings
                  requestBody:
                    content:
                      application/json:
                        schema: {$ref: "#/components/schemas/Things"}
                  responses:
                    "200": {description: ok}
            components:
              schemas:
                Things:
                  type: object
                  properties:
                    Things: {type: array, items: {$ref: "#/components/schemas/Thing"}}
                Thing:
                  type: object
                  properties:
                    Reference: {type: string, nullable: true}
                    Status: {type: string, enum: [ACTIVE, ARCHIVED], nullable: true}
                    Amount: {type: number, format: double, x-is-money: true, nullable: true}
                    Name: {type: string}
                    Flag: {type: boolean, default: "false"}
            """
        )
    )
    contract = XeroContract.load(spec)
    # when nulls are sent where the spec allows them, and where it does not
    ok = contract.request_errors(
        "PUT", "/Things", {"Things": [{"Reference": None, "Status": None, "Amount": None}]}
    )
    bad = contract.request_errors("PUT", "/Things", {"Things": [{"Name": None, "Status": "GONE"}]})
    # then nullable fields pass and the others fail
    assert ok == []
    assert bad == [
        "$.Things[0].Name: None is not of type 'string'",
        "$.Things[0].Status: 'GONE' is not one of ['ACTIVE', 'ARCHIVED', None]",
    ]
    assert contract.boolean_default_quirks == ["#/components/schemas/Thing/properties/Flag"]


def test_null_in_non_nullable_xero_field_fails():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the real spec, which marks no property nullable
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = put_invoices_request()
    body["Invoices"][0]["Reference"] = None
    # when a client sends null instead of omitting the field
    errors = contract.request_errors("PUT", "/Invoices", body)
    # then it is reported (send no key rather than null)
    assert errors == ["$.Invoices[0].Reference: None is not of type 'string'"]


def test_ms_json_dates_and_iso_dates_are_not_format_checked():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a payment dated both ways Xero accepts, and an invoice with a non-UUID id string
    contract = XeroContract.load(XERO_SPEC_PATH)
    body = put_payments_request()
    body["Payments"].append({**body["Payments"][0], "Date": "/Date(1752364800000+0000)/"})
    body["Payments"][0]["Invoice"] = {"InvoiceNumber": "WEB-10042"}
    # when they are checked
    errors = contract.request_errors("PUT", "/Payments", body)
    # then no format is enforced
    assert errors == []


def test_statuses_and_operations_without_json_schema_give_no_errors():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given responses the spec has no JSON schema for
    contract = XeroContract.load(XERO_SPEC_PATH)
    # when they are checked
    # then nothing is reported
    assert (
        contract.response_errors("GET", "/Invoices", 404, "The resource you're looking for cannot be found")
        == []
    )
    assert contract.response_errors("PUT", "/Invoices", 429, {"anything": 1}) == []
    assert contract.response_errors("GET", f"/Invoices/{INVOICE_ID}/pdf", 200, {"not": "json"}) == []
    assert contract.request_errors("GET", "/Invoices", {"ignored": True}) == []
    assert contract.request_errors("PUT", "/Invoices", None) == []
    assert contract.response_errors("POST", "/connect/token", 200, {"access_token": 1}) == []


def test_errors_for_call_combines_and_prefixes():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a recorded PUT /Invoices whose request and response are both wrong
    contract = XeroContract.load(XERO_SPEC_PATH)
    request = put_invoices_request()
    request["Invoices"][0]["LineItems"] = {}
    response = invoices_response()
    response["Invoices"][0]["Total"] = "abc"
    call = {
        "method": "put",
        "path": f"{BASE}/Invoices?summarizeErrors=false",
        "status": 200,
        "request_json": request,
        "response_json": response,
    }
    # when the call is checked
    errors = contract.errors_for_call(call)
    # then both sides are reported with the call prefix
    prefix = f"PUT {BASE}/Invoices?summarizeErrors=false 200"
    assert errors == [
        f"{prefix}: request: $.Invoices[0].LineItems: {{}} is not of type 'array'",
        f"{prefix}: response: $.Invoices[0].Total: 'abc' is not of type 'number'",
    ]
    # and valid calls, identity calls and bodiless calls give nothing
    assert (
        contract.errors_for_call(
            {**call, "request_json": put_invoices_request(), "response_json": invoices_response()}
        )
        == []
    )
    assert (
        contract.errors_for_call(
            {
                "method": "POST",
                "path": "https://identity.xero.com/connect/token",
                "status": 200,
                "request_json": None,
                "response_json": {"access_token": "x"},
            }
        )
        == []
    )
    assert (
        contract.errors_for_call(
            {
                "method": "GET",
                "path": "/connections",
                "status": 200,
                "request_json": None,
                "response_json": [{"tenantId": "x"}],
            }
        )
        == []
    )
    assert (
        contract.errors_for_call(
            {
                "method": "POST",
                "path": f"{BASE}/Invoices/{INVOICE_ID}/Email",
                "status": 204,
                "request_json": {},
                "response_json": None,
            }
        )
        == []
    )


def test_errors_for_call_reports_an_accounting_call_the_spec_lacks():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given a call to a method/path under /api.xro/2.0 that the spec does not define
    contract = XeroContract.load(XERO_SPEC_PATH)
    call = {
        "method": "DELETE",
        "path": f"{BASE}/Payments/{PAYMENT_ID}",
        "status": 200,
        "request_json": None,
        "response_json": None,
    }
    # when it is checked
    errors = contract.errors_for_call(call)
    # then the missing operation is the error
    assert errors == [
        f"DELETE {BASE}/Payments/{PAYMENT_ID} 200: no operation in the Xero Accounting spec "
        f"for DELETE {BASE}/Payments/{PAYMENT_ID}"
    ]


def test_load_is_cached_per_path():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given the spec loaded once
    first = XeroContract.load(XERO_SPEC_PATH)
    # when it is loaded again, via another spelling of the same path
    again = XeroContract.load(XERO_SPEC_PATH.parent / ".." / XERO_SPEC_PATH.parent.name / XERO_SPEC_PATH.name)
    # then the same converted contract is returned
    assert again is first
    assert first.openapi_version == "3.0.0"
    assert first.base_path == "/api.xro/2.0"


def test_other_reference_data_responses_validate():
    need(XERO_SPEC_PATH.exists(), SPEC_MISSING)
    # given Accounts, TaxRates, Organisation and Contacts bodies as Xero returns them
    contract = XeroContract.load(XERO_SPEC_PATH)
    envelope = {"Id": "x", "Status": "OK", "ProviderName": "p", "DateTimeUTC": "/Date(1752400000000)/"}
    accounts = {
        **envelope,
        "Accounts": [
            {
                "AccountID": ACCOUNT_ID,
                "Code": "200",
                "Name": "Sales",
                "Status": "ACTIVE",
                "Type": "REVENUE",
                "TaxType": "OUTPUT2",
                "Class": "REVENUE",
                "EnablePaymentsToAccount": False,
                "ShowInExpenseClaims": False,
                "BankAccountType": "",
                "ReportingCode": "REV.TRA",
                "HasAttachments": False,
                "UpdatedDateUTC": "/Date(1752400000000+0000)/",
                "AddToWatchlist": False,
            },
        ],
    }
    tax_rates = {
        **envelope,
        "TaxRates": [
            {
                "Name": "20% (VAT on Income)",
                "TaxType": "OUTPUT2",
                "ReportTaxType": "OUTPUT",
                "Status": "ACTIVE",
                "CanApplyToAssets": True,
                "CanApplyToEquity": True,
                "CanApplyToExpenses": True,
                "CanApplyToLiabilities": True,
                "CanApplyToRevenue": True,
                "DisplayTaxRate": 20.0,
                "EffectiveRate": 20.0,
                "TaxComponents": [
                    {"Name": "VAT", "Rate": 20.0, "IsCompound": False, "IsNonRecoverable": False}
                ],
            },
        ],
    }
    organisation = {
        **envelope,
        "Organisations": [
            {
                "OrganisationID": "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b",
                "Name": "Shop Ltd",
                "Version": "UK",
                "OrganisationType": "COMPANY",
                "BaseCurrency": "GBP",
                "CountryCode": "GB",
                "IsDemoCompany": False,
                "OrganisationStatus": "ACTIVE",
                "FinancialYearEndDay": 31,
                "FinancialYearEndMonth": 3,
                "SalesTaxBasis": "ACCRUALS",
                "SalesTaxPeriod": "QUARTERLY1",
                "Timezone": "GMTSTANDARDTIME",
                "OrganisationEntityType": "COMPANY",
                "ShortCode": "!abc12",
                "Class": "PREMIUM",
                "Edition": "BUSINESS",
                "CreatedDateUTC": "/Date(1500000000000)/",
                "Addresses": [],
                "Phones": [],
                "ExternalLinks": [],
                "PaymentTerms": {},
            },
        ],
    }
    contacts = {
        **envelope,
        "pagination": {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 1},
        "Contacts": [invoices_response()["Invoices"][0]["Contact"]],
    }
    # when each is checked against its GET
    # then all pass
    assert contract.response_errors("GET", "/Accounts", 200, accounts) == []
    assert contract.response_errors("GET", "/TaxRates", 200, tax_rates) == []
    assert contract.response_errors("GET", "/Organisation", 200, organisation) == []
    assert contract.response_errors("GET", "/Contacts?page=1", 200, contacts) == []
    assert contract.response_errors("PUT", "/Contacts", 200, contacts) == []
