"""Hundreds of records in Xero that the website cannot take: each fails alone, through a real worker, and
the rest lands."""

from decimal import Decimal

import pytest

from ecommerce.models import Contact, Invoice
from xero_sync.models import PullRetry, SyncRun

from .conftest import run_once_through_a_worker

GOOD = 300
BAD_PER_KIND = 75  # four kinds: 300 bad invoices, 225 bad contacts


def tea(**fields) -> dict:
    return {"Description": "Kawakawa tea", "Quantity": 1, "UnitAmount": "10.00", "AccountCode": "200",
            "TaxType": "OUTPUT2", **fields}


class _ContactsXeroWillNotReturn(dict):
    """The organisation's contacts with some that Xero's contact lists leave out (merged away, say), while
    the invoices naming them still render them."""

    def __init__(self, contacts: dict, hidden: set[str]):
        super().__init__(contacts)
        self.hidden = hidden

    def values(self):
        return [contact for key, contact in self.items() if key not in self.hidden]


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_hundreds_of_bad_records_from_xero_fail_alone_and_the_rest_land(
        xero_connected, xero_site, workers, broker, off_contract):
    """Invariant: a pull run by a worker over an organisation holding 300 good sales invoices and 300 bad ones
    (75 each: an unknown status, a customer with a 300-character name, a customer with an invalid email, a
    customer Xero's contact lists do not return) brings in exactly the good invoices (the website's invoices
    are, id for id and total for total, Xero's good ones) and their customers, fails each bad invoice alone
    (one failure each, named in the run's errors), and a second pull repeats nothing: the same counts, no
    invoice twice; once the bookkeeper fixes the emails in Xero, the next pull brings those in as well.

    Sizes: the issue's "hundreds": 600 invoices in Xero, half of them bad, 225 bad contacts; planted in the
    emulator's stored state where its API would refuse them, as tests/xero_sync/test_pull.py does.
    """
    # given, in Xero, good invoices and hundreds of bad ones
    good = [xero_site.create_invoice(Contact={"Name": f"Good Customer {n % 100:03d} Ltd"},
                                     LineItems=[tea(Quantity=1 + n % 5)]) for n in range(GOOD)]
    odd_status = [xero_site.create_invoice(Contact={"Name": f"Odd Status {n:03d} Ltd"}, LineItems=[tea()])
                  for n in range(BAD_PER_KIND)]
    long_name = [xero_site.create_invoice(Contact={"Name": f"Long{n:03d}" + "n" * 293}, LineItems=[tea()])
                 for n in range(BAD_PER_KIND)]
    bad_email = [xero_site.create_invoice(Contact={"Name": f"Bad Email {n:03d} Ltd",
                                                   "EmailAddress": f"accounts at bad{n}"}, LineItems=[tea()])
                 for n in range(BAD_PER_KIND)]
    ghost = [xero_site.create_invoice(Contact={"Name": f"Ghost {n:03d} Ltd"}, LineItems=[tea()])
             for n in range(BAD_PER_KIND)]
    with xero_site.lock:
        org = xero_site.organisation()
        for invoice in odd_status:
            org.invoices[invoice["InvoiceID"]]["Status"] = "ON_HOLD"
        org.contacts = _ContactsXeroWillNotReturn(org.contacts, {i["Contact"]["ContactID"] for i in ghost})
    bad = odd_status + long_name + bad_email + ghost
    workers.start(XERO_RATE_WINDOW_SECONDS="1", XERO_RATE_PER_WINDOW="60")

    # when a worker pulls (a webhook said something changed)
    run_once_through_a_worker(broker, task="xero_sync.pull_now")

    # then the run finished, with one failure for each bad invoice, each named
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.DONE, run.errors[:5]
    assert run.failed["invoice"] == len(bad), run.failed
    assert run.failed["contact"] >= 2 * BAD_PER_KIND, run.failed
    assert PullRetry.objects.filter(entity="invoice").count() == len(bad)
    # (the run keeps its first 200 errors; each one names its record)
    assert all(any(invoice["InvoiceNumber"] in error for error in run.errors) for invoice in bad[:50])
    # and the website holds exactly Xero's good invoices, with Xero's totals, and their customers
    assert_website_holds(good)
    assert set(Contact.objects.values_list("company_name", flat=True)) == (
        {f"Good Customer {n:03d} Ltd" for n in range(100)}
        | {f"Odd Status {n:03d} Ltd" for n in range(BAD_PER_KIND)})

    # when the worker pulls again
    run_once_through_a_worker(broker, task="xero_sync.pull_now")

    # then the bad ones are tried again by id and fail again, and nothing is taken twice
    again = SyncRun.objects.order_by("-started_at").first()
    assert again.failed["invoice"] == len(bad), again.failed
    assert_website_holds(good)

    # when the bookkeeper fixes the bad emails in Xero, and the worker pulls again
    for n, invoice in enumerate(bad_email):
        xero_site.edit_contact(invoice["Contact"]["ContactID"], EmailAddress=f"accounts@bad{n}.example.com")
    run_once_through_a_worker(broker, task="xero_sync.pull_now")

    # then those customers and their invoices land too, and the rest still fail alone
    fixed = SyncRun.objects.order_by("-started_at").first()
    assert fixed.failed["invoice"] == len(bad) - BAD_PER_KIND, fixed.failed
    assert_website_holds(good + bad_email)


def assert_website_holds(invoices: list[dict]) -> None:
    """The website's invoices are exactly these Xero invoices (once each), with Xero's numbers and totals."""
    website = {str(i.xero_id): i for i in Invoice.objects.all()}
    assert len(website) == Invoice.objects.count() == len(invoices)
    assert set(website) == {invoice["InvoiceID"] for invoice in invoices}
    for invoice in invoices:
        mine = website[invoice["InvoiceID"]]
        assert (mine.number, mine.total) == (invoice["InvoiceNumber"], Decimal(str(invoice["Total"])))
