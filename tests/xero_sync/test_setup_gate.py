"""Nothing reaches Xero before the organisation is set up (issue 18 item 2): connected, a sales account,
every tax code of confirmed sales mapped (the blank one too, as "no tax code"), every active payment
method given a direction. Until then no run pushes; a run that was asked for still pulls and says what
is missing, and the outbox keeps every change, so all of it goes once the settings are complete."""

import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template.loader import render_to_string
from django.utils import timezone

from ecommerce.models import Sale
from tests.ecommerce.factories import a_contact, a_payment_method, a_sale
from xero_sync.management.commands.xero_sync import EXIT_NOT_SET_UP, RUN_EPILOG
from xero_sync.models import OutboxEntry, SyncRun
from xero_sync.services import configuration
from xero_sync.services.sync import SyncOutcome, sync_attempt

pytestmark = pytest.mark.django_db

GST_LINE = {"description": "Merino beanie", "quantity": Decimal("2"), "unit_amount": Decimal("39.95"),
            "tax_rate": Decimal("15"), "tax_code": "GST"}
NO_CODE_LINE = {"description": "Gift wrap", "quantity": Decimal("1"), "unit_amount": Decimal("4.00"),
                "tax_rate": Decimal("15"), "tax_code": ""}


def writes(xero) -> list[tuple[str, str]]:
    return [(call["method"], call["path"]) for call in xero.calls if call["method"] in {"POST", "PUT"}]


def due_now() -> None:
    """The quiet period is over for everything recorded."""
    OutboxEntry.objects.update(recorded_at=timezone.now() - datetime.timedelta(days=1))


def test_before_connecting_the_checklist_says_what_to_do_first(db):
    steps = configuration.setup_checklist(None)

    assert [step.done for step in steps] == [False, False, True, True]
    assert steps[0].todo == "Press Connect to Xero."
    assert "Choose the default sales account" in steps[1].todo


def test_the_checklist_names_each_unmapped_tax_code_and_each_undecided_payment_method(xero_connected):
    a_sale(lines=[GST_LINE, NO_CODE_LINE])
    a_sale(lines=[{**GST_LINE, "tax_code": "GST15"}], confirm=False)  # a draft's code need not be mapped yet
    a_payment_method("cash", "Cash")
    a_payment_method("direct-deposit", "Direct deposit")

    steps = configuration.setup_checklist(xero_connected)

    assert [step.done for step in steps] == [True, True, False, False]
    assert steps[0].label == "Connected to Demo Company (NZ)"
    assert steps[1].label == "Sales account chosen (200)"
    assert steps[2].label == "Tax codes of confirmed sales mapped"
    assert steps[2].todo == "Map no tax code to a Xero tax type."  # GST is; the draft's GST15 waits
    assert steps[3].todo == "Choose push, pull or neither for Cash and Direct deposit."


def test_nothing_is_pushed_until_setup_is_complete_then_every_change_goes(xero_connected, xero_site):
    # given a confirmed sale with a line without tax code, and a Cash method nobody has decided about
    sale = a_sale(contact=a_contact(first_name="Mere", last_name="Tane"), lines=[GST_LINE, NO_CODE_LINE])
    a_payment_method("cash", "Cash")
    due_now()
    recorded = OutboxEntry.objects.count()

    # the quiet period's run does not start at all: pushing is all it is for
    auto = sync_attempt(trigger=SyncRun.Trigger.AUTO)
    assert auto.outcome == SyncOutcome.NOT_SET_UP and auto.run is None
    assert xero_site.calls == []

    # "Sync now" pulls, pushes nothing, and its run says what is missing
    asked = sync_attempt(trigger=SyncRun.Trigger.MANUAL, force=True)
    assert asked.outcome == SyncOutcome.NOT_SET_UP
    assert asked.run.status == SyncRun.Status.DONE
    assert asked.run.pushed == {}
    assert asked.run.errors[0] == (
        "Nothing is pushed to Xero until the Xero settings are complete: Map no tax code to a Xero tax type. "
        "Choose push, pull or neither for Cash.")
    assert writes(xero_site) == []
    assert {call["method"] for call in xero_site.calls} == {"GET"}
    assert not [invoice for invoice in xero_site.invoices() if invoice.get("InvoiceNumber") == sale.number]
    assert OutboxEntry.objects.count() == recorded  # nothing lost

    # once the last settings are saved, the same changes go
    configuration.tax_mapping_set(tax_code="", xero_tax_type="OUTPUT2")
    configuration.payment_method_configure(payment_method=a_payment_method("cash"), direction="none")
    done = sync_attempt(trigger=SyncRun.Trigger.AUTO)

    assert done.outcome == SyncOutcome.RAN and done.run.status == SyncRun.Status.DONE
    assert done.run.errors == []
    assert [invoice["InvoiceNumber"] for invoice in xero_site.invoices()
            if invoice.get("InvoiceNumber") == sale.number] == [sale.number]


def test_a_push_method_without_its_account_holds_the_push_back(xero_connected):
    card = a_payment_method("card")
    # a row written around the service (which refuses it): the checklist still catches it
    card.xero_config.xero_account_code = ""
    card.xero_config.save()

    steps = configuration.setup_checklist(xero_connected)

    assert steps[3].todo == "Choose the Xero account of Card (push)."


def test_xero_sync_run_exits_6_saying_what_is_missing(xero_connected, xero_site, capsys):
    configuration.sync_settings_update(default_sales_account_code="")
    a_sale(lines=[GST_LINE])

    with pytest.raises(CommandError) as pulled_only:
        call_command("xero_sync", "run")
    with pytest.raises(CommandError) as push_only:
        call_command("xero_sync", "run", "--push-only")

    assert pulled_only.value.returncode == EXIT_NOT_SET_UP == push_only.value.returncode == 6
    assert "Choose the default sales account" in str(pulled_only.value)
    assert "pulled" in capsys.readouterr().out  # the pull ran and its counts are printed
    assert writes(xero_site) == []
    assert "6 not set up" in RUN_EPILOG


def test_a_webhooks_pull_is_not_held_back(xero_connected, xero_site):
    configuration.sync_settings_update(default_sales_account_code="")

    pulled = sync_attempt(trigger=SyncRun.Trigger.WEBHOOK, force=True, push=False)

    assert pulled.outcome == SyncOutcome.RAN and pulled.run.status == SyncRun.Status.DONE


def test_tax_codes_of_the_demo_shop_need_no_mapping_when_its_data_stays_on_the_website(xero_connected, settings):
    call_command("seed_demo", "--contacts", "4", "--sales", "3")
    assert Sale.objects.filter(reference__startswith=configuration.DEMO_REFERENCE_PREFIX).count() == 3
    configuration.tax_mapping_set(tax_code="GST", xero_tax_type="")

    settings.XERO_USING_EMULATOR = True
    assert configuration.tax_codes_unmapped() == ["GST"]  # the demo goes to the emulator: its codes count
    settings.XERO_USING_EMULATOR = False
    assert configuration.tax_codes_unmapped() == []  # a real organisation: the demo stays home
    settings.XERO_PUSH_DEMO_DATA = True
    assert configuration.tax_codes_unmapped() == ["GST"]


def test_the_checklist_include_says_what_is_left_and_when_all_is_done(xero_connected):
    a_payment_method("cash", "Cash")
    before = render_to_string("xero_sync/setup_checklist.html",
                              {"steps": configuration.setup_checklist(xero_connected)})
    configuration.payment_method_configure(payment_method=a_payment_method("cash"), direction="none")
    after = render_to_string("xero_sync/setup_checklist.html",
                             {"steps": configuration.setup_checklist(xero_connected)})

    assert "Nothing is pushed to Xero until every step is done." in before
    assert "Every active payment method given a direction: Choose push, pull or neither for Cash." in before
    assert "Set up: changes go to Xero as they are made." in after and "Nothing is pushed" not in after


def test_the_demo_shop_stays_on_the_website_when_the_organisation_is_real(xero_connected, xero_site, settings):
    settings.XERO_USING_EMULATOR = False  # as with a real app's XERO_CLIENT_ID (the calls still go to the emulator)
    call_command("seed_demo", "--contacts", "4", "--sales", "3", "--quiet-login")
    for code in ("cash", "direct-deposit"):
        configuration.payment_method_configure(payment_method=a_payment_method(code), direction="none")
    real = a_sale(contact=a_contact(first_name="Mere", last_name="Tane"), lines=[GST_LINE])
    due_now()

    run = sync_attempt(trigger=SyncRun.Trigger.AUTO).run

    assert run.status == SyncRun.Status.DONE and run.errors == []
    assert sorted(invoice["InvoiceNumber"] for invoice in xero_site.invoices()
                  if invoice.get("Type") == "ACCREC") == [real.number]
    assert [contact["Name"] for contact in xero_site.contacts() if contact.get("ContactNumber", "").startswith("WEB-")] \
        == ["Mere Tane"]


def test_once_set_up_a_new_tax_code_fails_its_sale_alone_instead_of_holding_every_push(xero_connected, xero_site):
    # given an organisation that has received sales (it was set up)
    a_sale(lines=[GST_LINE])
    assert sync_attempt(trigger="manual", force=True).outcome == SyncOutcome.RAN
    # when a sale with a code nobody mapped yet is confirmed beside an ordinary one
    odd = a_sale(lines=[{**GST_LINE, "tax_code": "GST15"}])
    ordinary = a_sale(lines=[GST_LINE])
    attempt = sync_attempt(trigger="manual", force=True)

    # then the ordinary sale goes, the odd one fails alone with what to do, and the checklist still says so
    assert attempt.outcome == SyncOutcome.RAN
    invoices = {invoice["InvoiceNumber"] for invoice in xero_site.invoices()}
    assert ordinary.number in invoices and odd.number not in invoices
    assert any("GST15" in error for error in attempt.run.errors)
    [tax_step] = [step for step in configuration.setup_checklist(xero_connected) if "Tax codes" in step.label]
    assert not tax_step.done and "GST15" in tax_step.todo
