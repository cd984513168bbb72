"""Importing time from a CSV file: upload → preview → confirm, as the roles use it; and the command."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from onboarding.importing_csv import parse_date, parse_hours
from onboarding.views import SESSION_KEY
from tests.tickets.builders import catalogue, customer, hourly_default, technician, ticket
from tickets.models import TechnicianProfile, Ticket, TimeAllocation, TimeEntry

TECH = "technician@alpha.example"


@pytest.fixture
def setup(tenant):
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    hourly = hourly_default(cust, "120", priority=3, name="Hourly T&M", rounding_increment=15)
    return {"customer": cust, "ticket": ticket(cust), "tech": tech, "hourly": hourly}


def csv_for(setup) -> bytes:
    return (
        "Date,Customer,Ticket,Technician,Work Type,Hours,Notes,Billable\n"
        f"2026-03-03,Chain GmbH,#{setup['ticket'].pk},{TECH},Remote Support,1.5,Fixed the printer,yes\n"
        f"2026-03-04,Chain GmbH,New laptop setup,{TECH},Onsite Support,0:45,,no\n"
        f"2026-02-30,Chain GmbH,Printer on fire,{TECH},Remote Support,1,,\n"
        f"2026-03-05,Nobody Ltd,Printer on fire,{TECH},Remote Support,1,,\n"
        "2026-03-05,Chain GmbH,Printer on fire,ghost@alpha.example,Onsite,1,,maybe\n"
        f"2026-03-05,Chain GmbH,Printer on fire,{TECH},Remote Support,25,,\n"
    ).encode()


def upload(client, content: bytes, name: str = "time.csv"):
    return client.post(reverse("billing:import_time_csv"), {"file": SimpleUploadedFile(name, content, "text/csv")})


def preview_url(response) -> str:
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"]


def fingerprint_of(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    return page.context["confirm_form"].initial["fingerprint"]


# --- upload and preview ----------------------------------------------------------------------------


def test_upload_shows_a_preview_of_accepted_and_rejected_rows(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    page = client.get(url)
    html = page.content.decode()

    assert page.status_code == 200
    preview = page.context["preview"]
    assert [row.row for row in preview.accepted] == [2, 3]
    assert [str(problem) for problem in preview.rejected] == [
        "Row 4, Date: “2026-02-30” is not a real date",
        "Row 5, Customer: unknown customer “Nobody Ltd”",
        "Row 6, Technician: no user ghost@alpha.example at this MSP",
        "Row 6, Work Type: unknown work type “Onsite”",
        "Row 6, Billable: “maybe” is not yes or no",
        "Row 7, Hours: time worked must be between 1 minute and 24 hours",
    ]
    assert "2 can be imported" in html and "4 rejected" in html
    assert "unknown work type “Onsite”" in html and "New laptop setup" in html
    assert "Import 2 time entries" in html
    assert TimeEntry.objects.count() == 0  # nothing is written before the admin confirms


def test_confirm_imports_only_the_accepted_rows(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    response = client.post(url, {"fingerprint": fingerprint_of(client, url)}, follow=True)

    assert response.status_code == 200
    assert "Imported 2 time entries (2 h 15 min) from time.csv; opened 1 new ticket(s); skipped 4 rejected row(s)." in (
        response.content.decode())
    entries = TimeEntry.objects.order_by("date")
    assert [(e.ticket.title, e.work_type.name, e.minutes, e.billable, e.notes) for e in entries] == [
        ("Printer on fire", "Remote Support", 90, True, "Fixed the printer"),
        ("New laptop setup", "Onsite Support", 45, False, ""),
    ]
    # Routed and rated like time logged on the ticket page: 90 minutes at 120/h on the Hourly contract.
    allocation = TimeAllocation.objects.get(entry=entries[0])
    assert (allocation.contract, allocation.bucket, str(allocation.amount.amount)) == (setup["hourly"], "charged", "180.00")
    assert Ticket.objects.get(title="New laptop setup").customer == setup["customer"]
    assert SESSION_KEY not in client.session or not client.session[SESSION_KEY]


def test_uploading_the_same_file_again_imports_nothing_twice(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    client.post(url, {"fingerprint": fingerprint_of(client, url)})
    again = client.get(preview_url(upload(client, csv_for(setup))))
    preview = again.context["preview"]
    assert preview.accepted == []
    assert str(preview.rejected[0]).startswith(f"Row 2, Ticket: already imported: ticket #{setup['ticket'].pk} has this entry")
    assert str(preview.rejected[1]).startswith("Row 3, Ticket: already imported")
    assert "No row can be imported" in again.content.decode()


# --- refused confirmations ---------------------------------------------------------------------------


def test_a_second_confirmation_of_the_same_upload_is_refused(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    fingerprint = fingerprint_of(client, url)
    client.post(url, {"fingerprint": fingerprint})
    again = client.post(url, {"fingerprint": fingerprint})
    assert again.status_code == 409
    assert "expired, was already imported" in again.content.decode()
    assert TimeEntry.objects.count() == 2


def test_a_tampered_confirmation_is_refused(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    fingerprint_of(client, url)
    for forged in ({"fingerprint": "0" * 64}, {}):
        response = client.post(url, forged)
        assert response.status_code == 400
        assert "does not match the preview you were shown" in response.content.decode()
    assert TimeEntry.objects.count() == 0


def test_a_confirmation_after_the_data_changed_is_refused_as_stale(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    fingerprint = fingerprint_of(client, url)
    TechnicianProfile.objects.filter(user=setup["tech"]).delete()  # the technician lost their role meanwhile

    response = client.post(url, {"fingerprint": fingerprint})

    assert response.status_code == 409
    assert "The data changed since the preview" in response.content.decode()
    assert TimeEntry.objects.count() == 0 and not Ticket.objects.filter(title="New laptop setup").exists()
    # The preview, opened again, shows why.
    assert "has no technician role yet" in client.get(url).content.decode()


def test_an_expired_upload_is_refused(client_for, setup):
    client = client_for("alpha", "billing_admin")
    url = preview_url(upload(client, csv_for(setup)))
    fingerprint = fingerprint_of(client, url)
    session = client.session
    for stored in session[SESSION_KEY].values():
        stored["at"] = time.time() - 2 * 60 * 60
    session.save()

    response = client.post(url, {"fingerprint": fingerprint})
    assert response.status_code == 409 and TimeEntry.objects.count() == 0
    assert client.get(url).status_code == 404


def test_another_sessions_upload_cannot_be_confirmed(client_for, setup):
    url = preview_url(upload(client_for("alpha", "billing_admin"), csv_for(setup)))
    other = client_for("alpha", "owner")
    assert other.get(url).status_code == 404
    assert other.post(url, {"fingerprint": "x" * 64}).status_code == 409
    assert TimeEntry.objects.count() == 0


# --- who may do it -----------------------------------------------------------------------------------


def test_a_technician_gets_403_everywhere(client_for, setup):
    admin = client_for("alpha", "billing_admin")
    url = preview_url(upload(admin, csv_for(setup)))
    client = client_for("alpha", "technician")
    assert client.get(reverse("billing:import_time_csv")).status_code == 403
    assert upload(client, csv_for(setup)).status_code == 403
    assert client.get(url).status_code == 403
    assert client.post(url, {"fingerprint": "x" * 64}).status_code == 403


def test_an_accountant_may_look_but_not_upload_or_confirm(client_for, setup):
    admin = client_for("alpha", "billing_admin")
    url = preview_url(upload(admin, csv_for(setup)))
    fingerprint = fingerprint_of(admin, url)
    client = client_for("alpha", "accountant")
    page = client.get(reverse("billing:import_time_csv"))
    assert page.status_code == 200 and "not import anything" in page.content.decode()
    assert upload(client, csv_for(setup)).status_code == 403
    assert client.post(url, {"fingerprint": fingerprint}).status_code == 403
    assert TimeEntry.objects.count() == 0


def test_signed_out_visitors_are_sent_to_sign_in(client_for, setup):
    response = client_for("alpha").get(reverse("billing:import_time_csv"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- files that cannot be imported -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content,name,message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "time.csv", "This is not a CSV file: it contains binary data."),
        (b"Name,Amount\nAlice,12\n", "time.csv", "Missing: Date, Customer, Ticket, Technician, Work Type, Hours or Minutes."),
        (b"", "time.csv", "The submitted file is empty."),
        (b"\n \n", "time.csv", "The file is empty."),
        (b"Date,Customer,Ticket,Technician,Work Type,Minutes\n", "time.csv", "has a header row but no time entries"),
    ],
    ids=["binary", "wrong-columns", "zero-bytes", "blank", "header-only"],
)
def test_a_bad_file_is_refused_with_400_and_a_message(client_for, setup, content, name, message):
    response = upload(client_for("alpha", "billing_admin"), content, name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert SESSION_KEY not in response.wsgi_request.session


def test_no_file_at_all_is_a_400(client_for, setup):
    response = client_for("alpha", "billing_admin").post(reverse("billing:import_time_csv"), {})
    assert response.status_code == 400 and "Choose a CSV file to upload." in response.content.decode()


# --- reading the columns ------------------------------------------------------------------------------


def test_other_psa_spellings_semicolons_and_minutes_are_understood(client_for, setup):
    content = (
        "\ufeffWork Date;Company;Ticket Title;Technician Email;Billing Code;Minutes;Description;Billable?;Rate\n"
        f"03.03.2026;Chain GmbH;Printer on fire;{TECH};remote support;50;Checked toner;Y;99\n"
        f"3/13/2026;Chain GmbH;Printer on fire;{TECH};Remote Support;x;;;\n"
        ";;;;;;;;\n"  # a blank row keeps its number, as in a spreadsheet
        f"4/3/2026;Chain GmbH;Printer on fire;{TECH};Remote Support;10;;;\n"
    ).encode("utf-8")
    client = client_for("alpha", "billing_admin")
    preview = client.get(preview_url(upload(client, content))).context["preview"]
    assert [(r.row, r.date, r.minutes, r.ticket_id, r.billable) for r in preview.accepted] == [
        (2, dt.date(2026, 3, 3), 50, setup["ticket"].pk, True)]
    assert [str(p) for p in preview.rejected] == [
        "Row 3, Minutes: “x” is not a whole number of minutes",
        "Row 5, Work Date: “4/3/2026” could be day/month or month/day; write it as YYYY-MM-DD",
    ]
    assert preview.ignored_columns == ["Rate"]


def test_a_billed_ticket_takes_no_imported_time(client_for, setup):
    Ticket.objects.filter(pk=setup["ticket"].pk).update(status="closed", billed_at=dt.datetime(2026, 3, 31, tzinfo=dt.UTC))
    client = client_for("alpha", "billing_admin")
    preview = client.get(preview_url(upload(client, csv_for(setup)))).context["preview"]
    assert str(preview.rejected[0]) == (f"Row 2, Ticket: ticket #{setup['ticket'].pk} was billed and is locked; "
                                        "log further work on a new ticket")


@pytest.mark.parametrize("text,minutes", [("1.5", 90), ("1,25", 75), ("0:45", 45), ("2:00:40", 121), ("0.33", 20)])
def test_hours_are_read_in_the_usual_ways(text, minutes):
    assert parse_hours(text) == minutes


@pytest.mark.parametrize("text,day", [("2026-03-04", dt.date(2026, 3, 4)), ("04.03.2026", dt.date(2026, 3, 4)),
                                      ("13/03/2026", dt.date(2026, 3, 13)), ("03/13/2026", dt.date(2026, 3, 13)),
                                      ("2026-03-04 00:00:00", dt.date(2026, 3, 4))])
def test_dates_are_read_when_they_are_unambiguous(text, day):
    assert parse_date(text) == day


# --- the command ----------------------------------------------------------------------------------------


def test_the_command_previews_then_imports_with_confirm(setup, tmp_path, capsys):
    path = tmp_path / "time.csv"
    path.write_bytes(csv_for(setup))
    call_command("import_time_csv", str(path), "--tenant", "alpha")
    out = capsys.readouterr().out
    assert "6 row(s) read: 2 accepted, 4 rejected." in out
    assert "rejected — Row 6, Work Type: unknown work type “Onsite”" in out
    assert "run again with --confirm" in out
    assert TimeEntry.objects.count() == 0

    call_command("import_time_csv", str(path), "--tenant", "alpha", "--confirm")
    assert "Imported 2 time entries (135 minutes)" in capsys.readouterr().out
    assert TimeEntry.objects.count() == 2

    with pytest.raises(CommandError, match="No row can be imported"):
        call_command("import_time_csv", str(path), "--tenant", "alpha", "--confirm")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Name,Amount\n")
    with pytest.raises(CommandError, match="Missing: Date"):
        call_command("import_time_csv", str(bad), "--tenant", "alpha")


# --- hostile values ---------------------------------------------------------------------------------------


def one_row(setup, *, hours: str = "1", notes: str = "", column: str = "Hours") -> bytes:
    return (f"Date,Customer,Ticket,Technician,Work Type,{column},Notes\n"
            f"2026-03-03,Chain GmbH,#{setup['ticket'].pk},{TECH},Remote Support,{hours},{notes}\n").encode()


@pytest.mark.parametrize(
    "column,value,message",
    [
        ("Hours", "1e30", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "-1e30", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "1e999999999", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "1e-30", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "-0", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "NaN", "is not a number of hours such as 1.5 or 1:30"),
        ("Hours", "sNaN", "is not a number of hours such as 1.5 or 1:30"),
        ("Hours", "Infinity", "is not a number of hours such as 1.5 or 1:30"),
        ("Hours", "-inf", "is not a number of hours such as 1.5 or 1:30"),
        ("Hours", "9" * 5000 + ":00", "time worked must be between 1 minute and 24 hours"),
        ("Hours", "0." + "0" * 5000 + "1", "time worked must be between 1 minute and 24 hours"),
        ("Minutes", "1e30", "time worked must be between 1 minute and 24 hours"),
        ("Minutes", "9" * 5000, "time worked must be between 1 minute and 24 hours"),
        ("Minutes", "1e999999999", "time worked must be between 1 minute and 24 hours"),
        ("Minutes", "NaN", "is not a whole number of minutes"),
        ("Minutes", "-0", "time worked must be between 1 minute and 24 hours"),
    ],
)
def test_absurd_durations_are_a_row_problem_not_a_server_error(client_for, setup, column, value, message):
    client = client_for("alpha", "billing_admin")
    page = client.get(preview_url(upload(client, one_row(setup, hours=value, column=column))))
    assert page.status_code == 200
    preview = page.context["preview"]
    assert preview.accepted == []
    assert [p.column for p in preview.rejected] == [column]
    assert message in preview.rejected[0].message


def test_absurd_hours_through_the_command_are_listed_not_raised(setup, tmp_path, capsys):
    path = tmp_path / "time.csv"
    path.write_bytes(one_row(setup, hours="1e30"))
    call_command("import_time_csv", str(path), "--tenant", "alpha")
    assert "Row 2, Hours: time worked must be between 1 minute and 24 hours" in capsys.readouterr().out


def test_a_nul_byte_deep_in_the_file_is_refused_as_binary(client_for, setup):
    padding = "".join(f"2026-03-03,Chain GmbH,#{setup['ticket'].pk},{TECH},Remote Support,0.1,row {n}\n" for n in range(200))
    content = one_row(setup) + padding.encode() + one_row(setup, notes="bad\x00note").split(b"\n", 1)[1]
    assert content.index(b"\x00") > 8192
    response = upload(client_for("alpha", "billing_admin"), content)
    assert response.status_code == 400
    assert "This is not a CSV file: it contains binary data." in response.content.decode()
    assert TimeEntry.objects.count() == 0


def test_a_ticket_number_of_thousands_of_digits_is_a_row_problem(client_for, setup):
    content = (f"Date,Customer,Ticket,Technician,Work Type,Hours\n"
               f"2026-03-03,Chain GmbH,#{'9' * 5000},{TECH},Remote Support,1\n").encode()
    client = client_for("alpha", "billing_admin")
    preview = client.get(preview_url(upload(client, content))).context["preview"]
    assert [str(p) for p in preview.rejected] == ["Row 2, Ticket: a ticket title has at most 200 characters"]
