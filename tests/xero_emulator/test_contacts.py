"""Contacts: unique active names, unique ContactNumber, IsCustomer, archiving, summarizeErrors (§2, §6)."""

from .helpers import body, first_error, invoice

NAME_TAKEN = (
    "The contact name {} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)
NUMBER_TAKEN = (
    "The contact number {} is already assigned to another contact. "
    "The contact number must be unique across all contacts."
)
ARCHIVED = (
    "The contact with the specified contact details has been archived. "
    "The contact must be un-archived before creating new invoices or credit notes."
)


def test_a_contact_name_is_unique_among_active_contacts_ignoring_case(emulator, xero):
    # Given David Smith exists
    xero.create_contact(Name="David Smith")

    # When another "david smith" is created
    response = xero.put(
        "/Contacts", {"Contacts": [{"Name": "david smith", "EmailAddress": "d2@example.com"}]}
    )

    # Then Xero's ValidationException names the clash
    assert response.status_code == 400
    error = body(response)
    assert (error["ErrorNumber"], error["Type"], error["Message"]) == (
        10,
        "ValidationException",
        "A validation exception occurred",
    )
    assert first_error(response) == NAME_TAKEN.format("david smith")
    assert error["Elements"][0]["EmailAddress"] == "d2@example.com"
    assert len(emulator.contacts()) == 1


def test_an_archived_contacts_name_can_be_reused_but_it_cannot_then_be_restored(emulator, xero):
    old = xero.create_contact(Name="David Smith")
    archived = xero.post(f"/Contacts/{old['ContactID']}", {"Contacts": [{"ContactStatus": "ARCHIVED"}]})
    assert archived.status_code == 200 and body(archived)["Contacts"][0]["ContactStatus"] == "ARCHIVED"

    assert xero.put("/Contacts", {"Contacts": [{"Name": "David Smith"}]}).status_code == 200

    restore = xero.post(f"/Contacts/{old['ContactID']}", {"Contacts": [{"ContactStatus": "ACTIVE"}]})
    assert restore.status_code == 400 and first_error(restore) == NAME_TAKEN.format("David Smith")


def test_contact_number_is_unique_across_all_contacts_including_archived(emulator, xero):
    first = xero.create_contact(Name="Ann", ContactNumber="CUST-1")
    emulator.archive_contact(first["ContactID"])

    response = xero.put("/Contacts", {"Contacts": [{"Name": "Bob", "ContactNumber": "CUST-1"}]})

    assert response.status_code == 400 and first_error(response) == NUMBER_TAKEN.format("CUST-1")


def test_a_renamed_contact_frees_its_old_name_and_number_and_holds_the_new_ones(emulator, xero):
    ann = xero.create_contact(Name="Ann Lee", ContactNumber="CUST-1")
    renamed = xero.post(f"/Contacts/{ann['ContactID']}", {"Contacts": [{"Name": "Ann Smith",
                                                                         "ContactNumber": "CUST-2"}]})
    assert renamed.status_code == 200

    taken = xero.put("/Contacts", {"Contacts": [{"Name": "ann smith"}]})
    assert taken.status_code == 400 and first_error(taken) == NAME_TAKEN.format("ann smith")
    number_taken = xero.put("/Contacts", {"Contacts": [{"Name": "Bob", "ContactNumber": "cust-2"}]})
    assert number_taken.status_code == 400 and first_error(number_taken) == NUMBER_TAKEN.format("cust-2")
    freed = xero.put("/Contacts", {"Contacts": [{"Name": "Ann Lee", "ContactNumber": "CUST-1"}]})
    assert freed.status_code == 200
    assert sorted(c["Name"] for c in emulator.contacts()) == ["Ann Lee", "Ann Smith"]


def test_a_contact_needs_a_name(xero):
    response = xero.put("/Contacts", {"Contacts": [{"EmailAddress": "nobody@example.com"}]})
    assert response.status_code == 400 and first_error(response) == "The contact name must be specified."


def test_is_customer_is_ignored_on_write_and_set_by_the_first_sales_invoice_without_moving_updated_date(
    emulator, xero
):
    # Given a contact created with IsCustomer sent as true
    contact = xero.create_contact(Name="Ann", IsCustomer=True)
    assert contact["IsCustomer"] is False

    # When a sales invoice is raised for it later
    emulator.clock.advance(5)
    xero.create_invoice(Contact={"ContactID": contact["ContactID"]})

    # Then it is a customer, and its UpdatedDateUTC has not moved (Xero's documented caveat)
    after = body(xero.get(f"/Contacts/{contact['ContactID']}"))["Contacts"][0]
    assert after["IsCustomer"] is True
    assert after["UpdatedDateUTC"] == contact["UpdatedDateUTC"]
    customers = body(xero.get("/Contacts", params={"where": "IsCustomer==true"}))["Contacts"]
    assert [c["ContactID"] for c in customers] == [contact["ContactID"]]


def test_archived_contacts_are_hidden_unless_include_archived(emulator, xero):
    contact = xero.create_contact(Name="Old Customer")
    emulator.archive_contact(contact["ContactID"])

    assert body(xero.get("/Contacts"))["Contacts"] == []
    listed = body(xero.get("/Contacts", params={"includeArchived": "true"}))["Contacts"]
    assert [c["ContactStatus"] for c in listed] == ["ARCHIVED"]
    assert xero.get(f"/Contacts/{contact['ContactID']}").status_code == 200


def test_an_archived_contact_cannot_be_invoiced(emulator, xero):
    contact = xero.create_contact(Name="Old Customer")
    emulator.archive_contact(contact["ContactID"])

    by_id = xero.put("/Invoices", {"Invoices": [invoice(Contact={"ContactID": contact["ContactID"]})]})
    by_name = xero.put("/Invoices", {"Invoices": [invoice(contact_name="Old Customer")]})

    assert first_error(by_id) == ARCHIVED
    assert first_error(by_name) == ARCHIVED


def test_editing_an_archived_contact_needs_it_restored_in_the_same_request(emulator, xero):
    contact = xero.create_contact(Name="Old Customer")
    emulator.archive_contact(contact["ContactID"])

    edit = xero.post(f"/Contacts/{contact['ContactID']}", {"Contacts": [{"EmailAddress": "new@example.com"}]})
    assert first_error(edit) == "The specified contact details matched an archived contact"

    restore = {"Contacts": [{"EmailAddress": "new@example.com", "ContactStatus": "ACTIVE"}]}
    assert xero.post(f"/Contacts/{contact['ContactID']}", restore).status_code == 200


def test_summarize_errors_false_answers_200_with_every_element_and_its_status(emulator, xero):
    payload = {"Contacts": [{"Name": "Ann"}, {"Name": "ANN"}, {"Name": "Bob"}]}

    response = xero.put("/Contacts", payload, params={"summarizeErrors": "false"})

    assert response.status_code == 200
    elements = body(response)["Contacts"]
    assert [e["StatusAttributeString"] for e in elements] == ["OK", "ERROR", "OK"]
    assert [e["HasValidationErrors"] for e in elements] == [False, True, False]
    assert elements[1]["ValidationErrors"] == [{"Message": NAME_TAKEN.format("ANN")}]
    assert "ContactID" in elements[0] and "ContactID" not in elements[1]
    assert sorted(c["Name"] for c in emulator.contacts()) == ["Ann", "Bob"]


def test_summarized_errors_answer_400_with_only_the_failures_yet_the_valid_elements_are_created(
    emulator, xero
):
    # Xero's server default, and what xero-python's "True" sends
    for params in ({}, {"summarizeErrors": "True"}):
        emulator.reset()
        xero.token = emulator.issue_token()
        response = xero.put(
            "/Contacts", {"Contacts": [{"Name": "Ann"}, {"Name": "ann"}, {"Name": "Bob"}]}, params=params
        )

        assert response.status_code == 400
        elements = body(response)["Elements"]
        assert [e["Name"] for e in elements] == ["ann"]
        assert elements[0]["ValidationErrors"] == [{"Message": NAME_TAKEN.format("ann")}]
        assert sorted(c["Name"] for c in emulator.contacts()) == ["Ann", "Bob"]


def test_xero_python_style_false_is_accepted(xero):
    response = xero.put(
        "/Contacts", {"Contacts": [{"Name": "Ann"}, {"Name": "Ann"}]}, params={"summarizeErrors": "False"}
    )
    assert response.status_code == 200


def test_post_contacts_updates_by_id_or_contact_number_and_creates_otherwise(emulator, xero):
    ann = xero.create_contact(Name="Ann", ContactNumber="CUST-1")

    by_number = xero.post(
        "/Contacts", {"Contacts": [{"ContactNumber": "CUST-1", "EmailAddress": "ann@example.com"}]}
    )
    by_id = xero.post("/Contacts", {"Contacts": [{"ContactID": ann["ContactID"], "FirstName": "Ann"}]})
    new = xero.post("/Contacts", {"Contacts": [{"Name": "Bob", "ContactNumber": "CUST-2"}]})

    assert body(by_number)["Contacts"][0]["ContactID"] == ann["ContactID"]
    assert body(by_id)["Contacts"][0]["EmailAddress"] == "ann@example.com"
    assert body(by_id)["Contacts"][0]["FirstName"] == "Ann"
    assert body(new)["Contacts"][0]["ContactID"] != ann["ContactID"]
    assert len(emulator.contacts()) == 2


def test_put_contacts_only_creates(xero):
    xero.create_contact(Name="Ann", ContactNumber="CUST-1")
    response = xero.put("/Contacts", {"Contacts": [{"Name": "Ann Again", "ContactNumber": "CUST-1"}]})
    assert response.status_code == 400 and first_error(response) == NUMBER_TAKEN.format("CUST-1")


def test_a_contact_is_found_by_id_or_contact_number(xero):
    ann = xero.create_contact(Name="Ann", ContactNumber="CUST-1")
    assert body(xero.get(f"/Contacts/{ann['ContactID']}"))["Contacts"][0]["Name"] == "Ann"
    assert body(xero.get("/Contacts/CUST-1"))["Contacts"][0]["ContactID"] == ann["ContactID"]
    assert xero.get("/Contacts/00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_single_contact_update_with_an_error_is_a_400_validation_exception(xero):
    xero.create_contact(Name="Ann")
    bob = xero.create_contact(Name="Bob")

    response = xero.post(f"/Contacts/{bob['ContactID']}", {"Contacts": [{"Name": "Ann"}]})

    assert response.status_code == 400
    assert body(response)["Type"] == "ValidationException"
    assert first_error(response) == NAME_TAKEN.format("Ann")


def test_post_contacts_without_an_id_or_number_updates_the_active_namesake_and_put_never_does(emulator, xero):
    # Given David Smith exists in Xero
    david = xero.create_contact(Name="David Smith", EmailAddress="david@example.com")

    # When a second "David Smith" is posted without a ContactID or a known ContactNumber
    posted = xero.post("/Contacts", {"Contacts": [{"Name": "David Smith", "ContactNumber": "WEB-C000002",
                                                   "EmailAddress": "other@example.com"}]},
                       params={"summarizeErrors": "false"})

    # Then Xero overwrote the first one instead of creating a second (the merge PUT cannot make)
    assert body(posted)["Contacts"][0]["ContactID"] == david["ContactID"]
    assert [(c["Name"], c["EmailAddress"]) for c in emulator.contacts()] == [("David Smith", "other@example.com")]
    refused = xero.put("/Contacts", {"Contacts": [{"Name": "David Smith", "ContactNumber": "WEB-C000003"}]},
                       params={"summarizeErrors": "false"})
    assert body(refused)["Contacts"][0]["ValidationErrors"] == [{"Message": NAME_TAKEN.format("David Smith")}]
    assert len(emulator.contacts()) == 1
