"""Time entries from another PSA's CSV export: check every row, then import the good ones.

Two steps, so the admin decides with the facts in front of them:

1. ``time_csv_preview(text=...)`` reads the file and sorts every row into *accepted*
   (with the customer, ticket, technician and work type it resolves to) or *rejected*
   (row number, column, reason). Nothing is written. The preview carries a
   ``fingerprint`` of the file and of what each accepted row resolves to.
2. ``time_csv_import(text=..., fingerprint=...)`` checks the file again and imports the
   accepted rows — in one transaction, each through ``tickets.services.time_entry_log`` so
   it is routed and rated exactly like time logged on the ticket page. If anything changed
   since the preview (a ticket was billed, a technician lost their role, the same rows were
   imported meanwhile), the fingerprint differs and nothing is imported.

The columns and their accepted spellings are in docs/import-format.md ("CSV time entries").
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from contracts.models import Customer, WorkType
from msp_billing.accounts.models import User
from tickets import services as ticket_services
from tickets.models import TechnicianProfile, Ticket, TimeEntry

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_MINUTES = ticket_services.MAX_MINUTES_PER_ENTRY

# Canonical column → header spellings seen in PSA exports (compared lower-case, with
# "_", "-" and repeated spaces read as one space).
COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("date", "work date", "date worked", "entry date", "time entry date", "spent on"),
    "customer": ("customer", "company", "client", "account", "organization", "organisation", "customer name",
                 "company name", "client name"),
    "ticket": ("ticket", "ticket #", "ticket number", "ticket no", "ticket no.", "ticket id", "ticket title",
               "ticket summary", "summary", "issue"),
    "technician": ("technician", "technician email", "technician e mail", "tech", "email", "e mail", "user",
                   "user email", "member", "resource", "agent", "agent email"),
    "work_type": ("work type", "worktype", "billing code", "activity", "service item", "work category"),
    "hours": ("hours", "hours worked", "duration", "duration (hours)", "time (hours)", "time spent (hours)",
              "actual hours", "time spent"),
    "minutes": ("minutes", "duration (minutes)", "time (minutes)", "mins", "time spent (minutes)"),
    "notes": ("notes", "note", "description", "details", "work description", "comment", "comments"),
    "billable": ("billable", "is billable", "billable?", "bill"),
    "billable_hours": ("billable hours", "billed hours", "hours billed", "billable time", "billable time (hours)",
                       "billable duration"),
    "billable_minutes": ("billable minutes", "billed minutes", "minutes billed", "billable time (minutes)",
                         "billable mins"),
}
LABELS = {
    "date": "Date", "customer": "Customer", "ticket": "Ticket", "technician": "Technician",
    "work_type": "Work Type", "hours": "Hours", "minutes": "Minutes", "notes": "Notes", "billable": "Billable",
    "billable_hours": "Billable Hours", "billable_minutes": "Billable Minutes",
}
REQUIRED = ("date", "customer", "ticket", "technician", "work_type")
TRUE_WORDS = {"yes", "y", "true", "t", "1", "billable", "x"}
FALSE_WORDS = {"no", "n", "false", "f", "0", "non-billable", "non billable", "not billable", "nb"}


class CsvFileError(Exception):
    """The file as a whole cannot be read (not CSV, wrong columns, empty, too large)."""


class CsvPreviewStale(Exception):
    """What the file would import is no longer what the admin was shown."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # the header is row 1
    column: str  # the header as written in the file
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}, {self.column}: {self.message}"


@dataclass(frozen=True)
class AcceptedRow:
    row: int
    date: dt.date
    customer_id: int
    customer_name: str
    ticket_id: int | None  # None: a new ticket titled ``ticket_title`` is opened
    ticket_title: str
    technician_id: int
    technician_email: str
    work_type_id: int
    work_type_name: str
    minutes: int
    notes: str
    billable: bool | None  # None: the work type's default
    billable_minutes: int | None = None  # None: the time worked is billed

    @property
    def key(self) -> tuple:
        return (self.row, self.date.isoformat(), self.customer_id, self.ticket_id, _norm(self.ticket_title),
                self.technician_id, self.work_type_id, self.minutes, self.notes, self.billable, self.billable_minutes)


@dataclass
class CsvPreview:
    accepted: list[AcceptedRow]
    rejected: list[RowProblem]
    headers: dict[str, str]  # canonical → header in the file
    ignored_columns: list[str]
    rows_read: int
    fingerprint: str = ""
    new_tickets: list[tuple[str, str]] = field(default_factory=list)  # (customer, title)

    @property
    def rejected_rows(self) -> int:
        return len({problem.row for problem in self.rejected})


def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold() if text else ""


def _header_norm(text: str) -> str:
    return " ".join((text or "").strip().strip(":").replace("_", " ").replace("-", " ").split()).casefold()


# --- reading the file ------------------------------------------------------------------------


def time_csv_decode(raw: bytes) -> str:
    """The file's text; refuses what is not a text file."""
    if not raw or not raw.strip():
        raise CsvFileError("The file is empty.")
    if len(raw) > MAX_BYTES:
        raise CsvFileError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.")
    # A NUL anywhere (not only near the start) cannot be stored as text.
    if b"\x00" in raw:
        raise CsvFileError("This is not a CSV file: it contains binary data. Export the time entries as CSV.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet programs on Windows often save CSV in Windows-1252.
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            raise CsvFileError("The file is not UTF-8 or Windows-1252 text. Save it as CSV (UTF-8).") from None


def _dialect(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _read(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows, each with its row number (the header's row is 1
    when the file starts with it; blank rows keep their numbers, as in a spreadsheet)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise CsvFileError("The file is empty.")
    first_line = next(line for line in text.splitlines() if line.strip())
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(first_line)))
    except csv.Error as error:
        raise CsvFileError(f"This is not a readable CSV file: {error}.") from None
    start = next((index for index, row in enumerate(rows) if not _blank(row)), None)
    if start is None:
        raise CsvFileError("The file is empty.")
    body = [(index + 1, row) for index, row in enumerate(rows) if index > start and not _blank(row)]
    return rows[start], body


def _map_headers(header: list[str]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    spelling = {_header_norm(alias): canonical for canonical, aliases in COLUMNS.items() for alias in aliases}
    positions: dict[str, int] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    for index, title in enumerate(header):
        canonical = spelling.get(_header_norm(title))
        if canonical is None or canonical in positions:
            if title.strip():
                ignored.append(title.strip())
            continue
        positions[canonical] = index
        names[canonical] = title.strip()
    missing = [LABELS[name] for name in REQUIRED if name not in positions]
    if "hours" not in positions and "minutes" not in positions:
        missing.append("Hours or Minutes")
    if missing:
        expected = ("Date, Customer, Ticket, Technician, Work Type, Hours or Minutes "
                    "(optional: Notes, Billable, Billable Hours or Billable Minutes)")
        found = ", ".join(title.strip() for title in header if title.strip()) or "none"
        raise CsvFileError(f"The file does not have the columns this import needs. Missing: {', '.join(missing)}. "
                           f"Expected: {expected}. Found: {found}.")
    return positions, names, ignored


# --- parsing values --------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(value: str) -> dt.date:
    value = value.strip().split(" ")[0].split("T")[0]  # "2026-08-03 00:00:00" from a spreadsheet
    try:
        if match := _ISO.match(value):
            year, month, day = map(int, match.groups())
        elif match := _DOTTED.match(value):
            day, month, year = map(int, match.groups())
        elif match := _SLASHED.match(value):
            first, second, year = map(int, match.groups())
            if first > 12 >= second:
                day, month = first, second
            elif second > 12 >= first:
                month, day = first, second
            elif first == second:
                day = month = first
            else:
                raise ValueError(f"“{value}” could be day/month or month/day; write it as YYYY-MM-DD")
        else:
            raise ValueError(f"“{value}” is not a date; write it as YYYY-MM-DD")
        return dt.date(year, month, day)
    except ValueError as error:
        message = str(error)
        if "could be" in message or "write it" in message:
            raise
        raise ValueError(f"“{value}” is not a real date") from None


# A value past this is out of range, however it is written ("1e30", "99999:00"); checked
# before any arithmetic so absurd values become a row problem, never an overflow.
OUT_OF_RANGE = -1
MAX_HOURS = Decimal(MAX_MINUTES) / 60


def parse_hours(value: str) -> int:
    """Minutes from "1.5", "1,5", "1:30" or "1:30:00" (rounded to the nearest minute);
    ``OUT_OF_RANGE`` for a number that is no plausible duration of one entry."""
    text = value.strip().lower().removesuffix("h").removesuffix("hrs").removesuffix("hours").strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
            raise ValueError(f"“{value}” is not a duration such as 1.5 or 1:30")
        parts = [part.lstrip("0") or "0" for part in parts]
        if any(len(part) > 6 for part in parts):
            return OUT_OF_RANGE
        hours, minutes = int(parts[0]), int(parts[1])
        seconds = int(parts[2]) if len(parts) == 3 else 0
        if minutes >= 60 or seconds >= 60:
            raise ValueError(f"“{value}” is not a duration such as 1.5 or 1:30")
        return hours * 60 + minutes + (1 if seconds >= 30 else 0)
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        hours = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"“{value}” is not a number of hours such as 1.5 or 1:30") from None
    if not hours.is_finite():
        raise ValueError(f"“{value}” is not a number of hours such as 1.5 or 1:30")
    if not 0 <= hours <= MAX_HOURS:  # 0 is a valid billable time; worked time is checked for ≥ 1 minute
        return OUT_OF_RANGE
    return int((hours * 60).quantize(Decimal("1"), rounding="ROUND_HALF_UP"))


def parse_minutes(value: str) -> int:
    text = value.strip().lower().removesuffix("min").removesuffix("m").strip()
    try:
        minutes = Decimal(text.replace(",", ".") if "." not in text else text)
    except InvalidOperation:
        raise ValueError(f"“{value}” is not a whole number of minutes") from None
    if not minutes.is_finite():
        raise ValueError(f"“{value}” is not a whole number of minutes")
    if not 0 <= minutes <= MAX_MINUTES:
        return OUT_OF_RANGE
    if minutes != minutes.to_integral_value():
        raise ValueError(f"“{value}” is not a whole number of minutes")
    return int(minutes)


def parse_billable(value: str) -> bool | None:
    text = value.strip().casefold()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"“{value}” is not yes or no")


# --- the preview -------------------------------------------------------------------------------


class _Lookups:
    """Customers, technicians, work types and tickets, loaded once per file."""

    def __init__(self) -> None:
        self.customers_by_legal: dict[str, Customer] = {}
        self.customers_by_display: dict[str, list[Customer]] = defaultdict(list)
        for customer in Customer.objects.all():
            self.customers_by_legal[_norm(customer.legal_name)] = customer
            if customer.display_name:
                self.customers_by_display[_norm(customer.display_name)].append(customer)
        self.users = {user.email.lower(): user for user in User.objects.all()}
        self.roles = dict(TechnicianProfile.objects.values_list("user_id", "role_id"))
        self.work_types = {_norm(w.name): w for w in WorkType.objects.all()}
        self.tickets_by_customer: dict[int, list[Ticket]] = defaultdict(list)
        self.existing_entries: dict[int, Counter] = {}

    def customer(self, value: str) -> Customer:
        found = self.customers_by_legal.get(_norm(value))
        if found is not None:
            return found
        by_display = self.customers_by_display.get(_norm(value), [])
        if len(by_display) == 1:
            return by_display[0]
        if len(by_display) > 1:
            raise ValueError(f"several customers are called “{value}”; use the legal name")
        raise ValueError(f"unknown customer “{value}”")

    def technician(self, value: str) -> User:
        user = self.users.get(value.strip().lower())
        if user is None:
            if "@" not in value:
                raise ValueError(f"“{value}” is not an e-mail address; give the technician's e-mail")
            raise ValueError(f"no user {value.strip()} at this MSP")
        if not user.is_active:
            raise ValueError(f"{user.email} is deactivated")
        if user.pk not in self.roles:
            raise ValueError(f"{user.email} has no technician role yet; set one first")
        return user

    def work_type(self, value: str) -> WorkType:
        found = self.work_types.get(_norm(value))
        if found is None:
            raise ValueError(f"unknown work type “{value}”")
        if not found.is_active:
            raise ValueError(f"work type {found.name} is no longer in use")
        return found

    def ticket(self, customer: Customer, value: str) -> Ticket | None:
        """The customer's ticket by number (“#123”) or title; None when a new ticket is needed."""
        if customer.pk not in self.tickets_by_customer:
            self.tickets_by_customer[customer.pk] = list(Ticket.objects.filter(customer=customer))
        tickets = self.tickets_by_customer[customer.pk]
        number = re.fullmatch(r"#?\s*(\d{1,18})", value.strip())
        if number:
            found = next((t for t in tickets if t.pk == int(number.group(1))), None)
            if found is not None:
                return self._open(found)
        titled = [t for t in tickets if _norm(t.title) == _norm(value)]
        if len(titled) > 1:
            raise ValueError(f"{len(titled)} tickets of {customer.legal_name} are titled “{value.strip()}”; "
                             "give the ticket number (#id) instead")
        return self._open(titled[0]) if titled else None

    def _open(self, ticket: Ticket) -> Ticket:
        if ticket.is_locked:
            raise ValueError(f"ticket #{ticket.pk} was billed and is locked; log further work on a new ticket")
        return ticket

    def entries_of(self, ticket_id: int) -> Counter:
        if ticket_id not in self.existing_entries:
            self.existing_entries[ticket_id] = Counter(
                (e.technician_id, e.work_type_id, e.date, e.minutes, e.notes.strip())
                for e in TimeEntry.objects.filter(ticket_id=ticket_id)
            )
        return self.existing_entries[ticket_id]


def time_csv_preview(*, text: str) -> CsvPreview:
    """Sort every row into accepted or rejected; writes nothing. Raises ``CsvFileError``."""
    header, body = _read(text)
    positions, names, ignored = _map_headers(header)
    if not body:
        raise CsvFileError("The file has a header row but no time entries.")
    if len(body) > MAX_ROWS:
        raise CsvFileError(f"The file has {len(body)} rows; import at most {MAX_ROWS} at a time.")
    lookups = _Lookups()
    accepted: list[AcceptedRow] = []
    rejected: list[RowProblem] = []
    new_tickets: dict[tuple[int, str], tuple[str, str]] = {}
    for row_number, cells in body:
        row = _Row(row_number, cells, positions, names)
        result = row.resolve(lookups)
        if row.problems:
            rejected.extend(row.problems)
            continue
        if result.ticket_id is not None:
            seen = lookups.entries_of(result.ticket_id)
            key = (result.technician_id, result.work_type_id, result.date, result.minutes, result.notes)
            if seen[key]:
                seen[key] -= 1  # one row per identical entry already there: a second import adds nothing
                rejected.append(RowProblem(row_number, names["ticket"],
                                           f"already imported: ticket #{result.ticket_id} has this entry "
                                           f"({result.minutes} minutes of {result.work_type_name} on {result.date})"))
                continue
        else:
            new_tickets.setdefault((result.customer_id, _norm(result.ticket_title)),
                                   (result.customer_name, result.ticket_title))
        accepted.append(result)
    preview = CsvPreview(accepted=accepted, rejected=rejected, headers=names, ignored_columns=ignored,
                         rows_read=len(body), new_tickets=list(new_tickets.values()))
    preview.fingerprint = _fingerprint(text, accepted)
    return preview


def _fingerprint(text: str, accepted: list[AcceptedRow]) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    for row in accepted:
        digest.update(repr(row.key).encode("utf-8"))
    return digest.hexdigest()


class _Row:
    def __init__(self, number: int, cells: list[str], positions: dict[str, int], names: dict[str, str]):
        self.number = number
        self.names = names
        self.values = {name: (cells[pos].strip() if pos < len(cells) else "") for name, pos in positions.items()}
        self.problems: list[RowProblem] = []

    def problem(self, column: str, message: str) -> None:
        self.problems.append(RowProblem(self.number, self.names.get(column, LABELS[column]), message))

    def value(self, column: str, parse, *, required: bool = True):
        text = self.values.get(column, "")
        if not text:
            if required:
                self.problem(column, "is empty")
            return None
        try:
            return parse(text)
        except ValueError as error:
            self.problem(column, str(error))
            return None

    def resolve(self, lookups: _Lookups) -> AcceptedRow | None:
        day = self.value("date", parse_date)
        customer = self.value("customer", lookups.customer)
        technician = self.value("technician", lookups.technician)
        work_type = self.value("work_type", lookups.work_type)
        minutes = self._minutes()
        billable_minutes = self._billable_minutes(minutes)
        billable = self.value("billable", parse_billable, required=False) if "billable" in self.values else None
        ticket = None
        title = self.values.get("ticket", "")
        if not title:
            self.problem("ticket", "is empty")
        elif customer is not None:
            try:
                ticket = lookups.ticket(customer, title)
            except ValueError as error:
                self.problem("ticket", str(error))
        if len(title) > 200:
            self.problem("ticket", "a ticket title has at most 200 characters")
        if self.problems:
            return None
        return AcceptedRow(
            row=self.number, date=day, customer_id=customer.pk, customer_name=customer.legal_name,
            ticket_id=ticket.pk if ticket else None, ticket_title=ticket.title if ticket else title,
            technician_id=technician.pk, technician_email=technician.email, work_type_id=work_type.pk,
            work_type_name=work_type.name, minutes=minutes, notes=self.values.get("notes", ""), billable=billable,
            billable_minutes=billable_minutes,
        )

    def _billable_minutes(self, worked: int | None) -> int | None:
        """Billable time, when the row gives it (an empty cell: the time worked is billed)."""
        from_minutes = (self.value("billable_minutes", parse_minutes, required=False)
                        if self.values.get("billable_minutes") else None)
        from_hours = (self.value("billable_hours", parse_hours, required=False)
                      if self.values.get("billable_hours") else None)
        if from_minutes is None and from_hours is None:
            return None
        if from_minutes is not None and from_hours is not None and from_minutes != from_hours:
            self.problem("billable_minutes", f"{from_minutes} billable minutes does not match "
                                             f"{self.values['billable_hours']} billable hours")
            return None
        billable = from_minutes if from_minutes is not None else from_hours
        column = "billable_minutes" if from_minutes is not None else "billable_hours"
        if billable == OUT_OF_RANGE:
            self.problem(column, "billable time must be between 0 and 24 hours")
            return None
        if worked is not None and billable > worked:
            self.problem(column, f"billable time ({billable} minutes) is more than the time worked ({worked} minutes)")
            return None
        return billable

    def _minutes(self) -> int | None:
        from_minutes = self.value("minutes", parse_minutes, required=False) if "minutes" in self.values else None
        from_hours = self.value("hours", parse_hours, required=False) if "hours" in self.values else None
        out_of_range = [name for name, parsed in (("minutes", from_minutes), ("hours", from_hours))
                        if parsed == OUT_OF_RANGE]
        for column in out_of_range:
            self.problem(column, "time worked must be between 1 minute and 24 hours")
        if out_of_range:
            return None
        if from_minutes is None and from_hours is None:
            if not any(p.column in (self.names.get("minutes"), self.names.get("hours")) for p in self.problems):
                column = "hours" if "hours" in self.names else "minutes"
                self.problem(column, "is empty: give the time worked")
            return None
        if from_minutes is not None and from_hours is not None and from_minutes != from_hours:
            self.problem("minutes", f"{from_minutes} minutes does not match {self.values['hours']} hours")
            return None
        minutes = from_minutes if from_minutes is not None else from_hours
        column = "minutes" if from_minutes is not None else "hours"
        if not 0 < minutes <= MAX_MINUTES:
            self.problem(column, "time worked must be between 1 minute and 24 hours")
            return None
        return minutes


# --- the import ------------------------------------------------------------------------------


@dataclass
class CsvImportResult:
    entries: list[TimeEntry]
    new_tickets: list[Ticket]
    rejected_rows: int


@transaction.atomic
def time_csv_import(*, text: str, fingerprint: str, acting_user=None) -> CsvImportResult:
    """Import the accepted rows, if they are still exactly what the preview showed."""
    preview = time_csv_preview(text=text)
    if preview.fingerprint != fingerprint:
        raise CsvPreviewStale("The data changed since the preview (for example a ticket was billed, a technician's "
                              "role changed, or these rows were imported meanwhile). Review the updated preview "
                              "and confirm again.")
    if not preview.accepted:
        raise CsvPreviewStale("No row of this file can be imported.")
    customers = {c.pk: c for c in Customer.objects.filter(pk__in={r.customer_id for r in preview.accepted})}
    users = {u.pk: u for u in User.objects.filter(pk__in={r.technician_id for r in preview.accepted})}
    work_types = {w.pk: w for w in WorkType.objects.filter(pk__in={r.work_type_id for r in preview.accepted})}
    tickets = {t.pk: t for t in Ticket.objects.filter(pk__in={r.ticket_id for r in preview.accepted if r.ticket_id})}
    opened: dict[tuple[int, str], Ticket] = {}
    entries: list[TimeEntry] = []
    for row in sorted(preview.accepted, key=lambda r: (r.date, r.row)):
        try:
            if row.ticket_id is not None:
                ticket = tickets[row.ticket_id]
            else:
                key = (row.customer_id, _norm(row.ticket_title))
                if key not in opened:
                    opened[key] = ticket_services.ticket_create(
                        customer=customers[row.customer_id], title=row.ticket_title, technician=users[row.technician_id])
                ticket = opened[key]
            entries.append(ticket_services.time_entry_log(
                ticket=ticket, technician=users[row.technician_id], work_type=work_types[row.work_type_id],
                date=row.date, minutes=row.minutes, notes=row.notes, billable=row.billable,
                billable_minutes=row.billable_minutes,
            ))
        except ValidationError as error:
            raise CsvPreviewStale(f"Row {row.row} can no longer be imported: {' '.join(error.messages)} "
                                  "Nothing was imported.") from None
    return CsvImportResult(entries=entries, new_tickets=list(opened.values()), rejected_rows=preview.rejected_rows)
