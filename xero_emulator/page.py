"""Read-only HTML: what has arrived "in Xero", for a person running the demo. All text is escaped."""

import json
import zoneinfo
from html import escape

from . import render
from .serialize import dumps, loads

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #cbd2d9; padding: .3rem .6rem; text-align: left; }
td.money { text-align: right; font-variant-numeric: tabular-nums; }
h2 { margin-top: 2.5rem; } small { color: #616e7c; } pre { background: #f5f7fa; padding: 1rem; }
"""

KINDS = {"contacts": "Contact", "invoices": "Invoice", "creditnotes": "Credit note", "payments": "Payment"}


def _document(title: str, body: str, *, refresh: bool = False) -> str:
    # The overview reloads itself so the demo shows sync results without a manual refresh.
    meta = '<meta http-equiv="refresh" content="10">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _table(headings: list[str], rows: list[list[str]], money_columns: tuple[int, ...] = ()) -> str:
    if not rows:
        return "<p><small>None yet.</small></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    lines = []
    for row in rows:
        cells = "".join(
            f'<td class="money">{cell}</td>' if index in money_columns else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _link(tenant_id: str, kind: str, record_id: str, text: str) -> str:
    return f'<a href="/_emulator/orgs/{escape(tenant_id)}/{kind}/{escape(record_id)}">{escape(text or "(blank)")}</a>'


# The zone the pages show times in, named (python -m xero_emulator --time-zone; UTC unless told).
DISPLAY_ZONE = zoneinfo.ZoneInfo("UTC")


def _when(moment) -> str:
    return escape(moment.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d %H:%M:%S %Z"))


def index(emulator) -> str:
    """Every organisation with its contacts, invoices, credit notes and payments (caller holds the lock)."""
    sections = []
    for org in emulator.orgs.values():
        tenant = org.tenant_id
        contacts = [
            [_link(tenant, "contacts", c["ContactID"], c["Name"]), escape(c.get("ContactNumber") or ""),
             escape(c.get("EmailAddress") or ""), escape(c["ContactStatus"]), "yes" if c["IsCustomer"] else "",
             _when(c["UpdatedDateUTC"])]
            for c in org.contacts.values()
        ]  # fmt: skip
        by_document = org.payments_by_document()
        invoices = []
        for invoice in org.invoices.values():
            shown = render.invoice_json(org, invoice, payments=by_document.get(invoice["InvoiceID"], []))
            invoices.append(
                [_link(tenant, "invoices", invoice["InvoiceID"], invoice.get("InvoiceNumber", "")),
                 escape(invoice["Type"]), escape(org.contacts[invoice["ContactID"]]["Name"]),
                 escape(invoice["Date"].isoformat()), escape(invoice["Status"]), escape(str(invoice["Total"])),
                 escape(str(shown["AmountDue"])), _when(invoice["UpdatedDateUTC"])]
            )  # fmt: skip
        credit_notes = []
        for note in org.credit_notes.values():
            shown = render.credit_note_json(org, note, payments=by_document.get(note["CreditNoteID"], []))
            credit_notes.append(
                [_link(tenant, "creditnotes", note["CreditNoteID"], note.get("CreditNoteNumber", "")),
                 escape(note["Type"]), escape(org.contacts[note["ContactID"]]["Name"]),
                 escape(note["Date"].isoformat()), escape(note["Status"]), escape(str(note["Total"])),
                 escape(str(shown["RemainingCredit"])), _when(note["UpdatedDateUTC"])]
            )  # fmt: skip
        payments = [
            [_link(tenant, "payments", p["PaymentID"], p["Date"].isoformat()),
             escape(_paid_document_number(org, p)), escape(str(p["Amount"])),
             escape(org.accounts[p["AccountID"]]["Code"] + " " + org.accounts[p["AccountID"]]["Name"]),
             escape(p["Reference"]), escape(p["Status"]), _when(p["UpdatedDateUTC"])]
            for p in org.payments.values()
        ]  # fmt: skip
        sections.append(
            f"<h2>{escape(org.name)} <small>tenant {escape(tenant)}, {escape(org.base_currency)}</small></h2>"
            f"<h3>Contacts ({len(contacts)})</h3>"
            + _table(["Name", "Contact number", "Email", "Status", "Customer", "Updated"], contacts)
            + f"<h3>Invoices ({len(invoices)})</h3>"
            + _table(
                ["Number", "Type", "Contact", "Date", "Status", "Total", "Due", "Updated"], invoices, (5, 6)
            )
            + f"<h3>Credit notes ({len(credit_notes)})</h3>"
            + _table(
                ["Number", "Type", "Contact", "Date", "Status", "Total", "Remaining credit", "Updated"],
                credit_notes,
                (5, 6),
            )
            + f"<h3>Payments and refunds ({len(payments)})</h3>"
            + _table(
                ["Date", "Invoice or credit note", "Amount", "Account", "Reference", "Status", "Updated"],
                payments,
                (2,),
            )
        )
    clock = f"<p><small>Emulator clock: {_when(emulator.clock.now())}</small></p>"
    return _document("Xero emulator", "<h1>Xero emulator</h1>" + clock + "".join(sections), refresh=True)


def _paid_document_number(org, payment: dict) -> str:
    if payment.get("CreditNoteID"):
        return org.credit_notes[payment["CreditNoteID"]].get("CreditNoteNumber", "")
    return org.invoices[payment["InvoiceID"]].get("InvoiceNumber", "")


def detail(emulator, tenant_id: str, kind: str, record_id: str) -> str | None:
    """One contact, invoice, credit note or payment as the API returns it (caller holds the lock); None if unknown."""
    org = emulator.orgs.get(tenant_id.lower())
    if org is None or kind not in KINDS:
        return None
    if kind == "contacts":
        record = org.contact_by_ref(record_id)
        shown = record and render.contact_json(record)
        title = record and record["Name"]
    elif kind == "invoices":
        record = org.invoice_by_ref(record_id)
        shown = record and render.invoice_json(org, record)
        title = record and f"Invoice {record.get('InvoiceNumber', '')}"
    elif kind == "creditnotes":
        record = org.credit_note_by_ref(record_id)
        shown = record and render.credit_note_json(org, record)
        title = record and f"Credit note {record.get('CreditNoteNumber', '')}"
    else:
        record = org.payments.get(record_id.lower())
        shown = record and render.payment_json(org, record)
        title = record and f"Payment of {record['Amount']}"
    if record is None:
        return None
    pretty = json.dumps(loads(dumps(shown)), indent=2, default=str)
    body = (
        f'<p><a href="/">All organisations</a> / {escape(org.name)} / {escape(KINDS[kind])}</p>'
        f"<h1>{escape(title)}</h1><pre>{escape(pretty)}</pre>"
    )
    return _document(title, body)


def oauth_error(code: str) -> str:
    """Xero shows an error page, not a redirect, when the client or redirect URI is wrong."""
    reason = {"invalid_client": "Invalid client_id", "invalid_redirect_uri": "Invalid redirect_uri"}[code]
    body = f"<h1>Sorry, something went wrong</h1><p>Error: unauthorized_client</p><p>{escape(reason)}</p>"
    return _document("Xero | Error", body)
