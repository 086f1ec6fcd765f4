"""A thin ``requests`` client for the emulator's Accounting API, and payload builders for the tests."""

from decimal import Decimal

import requests


class XeroClient:
    """Calls /api.xro/2.0 as one tenant; responses parse money as Decimal via ``.body(response)``."""

    def __init__(self, emulator, *, tenant_id: str | None = None, token: dict | None = None) -> None:
        self.emulator = emulator
        self.tenant_id = tenant_id or emulator.default_tenant_id
        self.token = token or emulator.issue_token()
        self.session = requests.Session()

    def headers(self, extra: dict | None = None) -> dict:
        headers = {
            "Authorization": f"Bearer {self.token['access_token']}",
            "xero-tenant-id": self.tenant_id,
            "Accept": "application/json",
        }
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, *, json=None, params=None, headers=None, timeout=10, data=None):
        return self.session.request(
            method,
            self.emulator.api_url + path,
            json=json,
            data=data,
            params=params,
            headers=self.headers(headers),
            timeout=timeout,
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    # Shortcuts that expect success and return the saved element.

    def create_contact(self, **fields) -> dict:
        response = self.put("/Contacts", {"Contacts": [fields]})
        assert response.status_code == 200, response.text
        return body(response)["Contacts"][0]

    def create_invoice(self, **fields) -> dict:
        response = self.put("/Invoices", {"Invoices": [invoice(**fields)]})
        assert response.status_code == 200, response.text
        return body(response)["Invoices"][0]

    def pay(self, invoice_id: str, amount, account_code: str = "090", **fields) -> requests.Response:
        payment = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": account_code}, "Amount": amount}
        return self.put("/Payments", {"Payments": [{**payment, **fields}]})

    def create_credit_note(self, **fields) -> dict:
        response = self.put("/CreditNotes", {"CreditNotes": [credit_note(**fields)]})
        assert response.status_code == 200, response.text
        return body(response)["CreditNotes"][0]

    def allocate(self, credit_note_id: str, invoice_id: str, amount, date="2026-01-10", **params):
        allocation = {"Invoice": {"InvoiceID": invoice_id}, "Amount": amount, "Date": date}
        return self.put(f"/CreditNotes/{credit_note_id}/Allocations", {"Allocations": [allocation]}, **params)

    def refund(self, credit_note_id: str, amount, account_code: str = "090", **fields) -> requests.Response:
        refund = {"CreditNote": {"CreditNoteID": credit_note_id}, "Account": {"Code": account_code}, "Amount": amount}
        return self.put("/Payments", {"Payments": [{**refund, **fields}]})

    def credit_note_now(self, credit_note_id: str) -> dict:
        return body(self.get(f"/CreditNotes/{credit_note_id}"))["CreditNotes"][0]

    def invoice_now(self, invoice_id: str) -> dict:
        return body(self.get(f"/Invoices/{invoice_id}"))["Invoices"][0]


def body(response: requests.Response) -> dict:
    """The JSON body with money as exact Decimals."""
    return response.json(parse_float=Decimal)


def line(description="Widget", quantity=1, unit_amount=10, account_code="200", tax_type="OUTPUT2", **more):
    return {
        "Description": description,
        "Quantity": quantity,
        "UnitAmount": unit_amount,
        "AccountCode": account_code,
        "TaxType": tax_type,
        **more,
    }


def invoice(contact_name="Ann Customer", lines=None, **fields) -> dict:
    """An AUTHORISED ACCREC invoice payload; fields override."""
    return {
        "Type": "ACCREC",
        "Contact": {"Name": contact_name},
        "Date": "2026-01-02",
        "DueDate": "2026-01-20",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": lines if lines is not None else [line()],
        **fields,
    }


def credit_note(contact_name="Ann Customer", lines=None, **fields) -> dict:
    """An AUTHORISED ACCRECCREDIT credit note payload; fields override."""
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"Name": contact_name},
        "Date": "2026-01-05",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": lines if lines is not None else [line()],
        **fields,
    }


def first_error(response: requests.Response) -> str:
    """The first validation message of a 400 ValidationException (what the SDK shows as ``reason``)."""
    return body(response)["Elements"][0]["ValidationErrors"][0]["Message"]


def errors_of(response: requests.Response) -> list[str]:
    """Every validation message of the first element a 400 ValidationException lists."""
    return [error["Message"] for error in body(response)["Elements"][0]["ValidationErrors"]]
