"""The Leaks page's actions: find the leaks not dismissed, dismiss one with a reason, fix one.

A fix goes through the owning app's services (tickets: mark billable, route to a contract;
contracts: add the device line, re-rate), in one transaction with its audit record, and
only while the leak is still there as the page showed it (same fingerprint): a doubled or
stale request changes nothing and says so.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from contracts.models import Contract, ContractRateLine, UnmatchedDeviceReport
from contracts.services import device_class_add, device_count_record, rate_line_add
from leaks.models import LeakDismissal
from leaks.rules import Leak, leaks_all
from msp_billing.audit.services import audit_record
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import clean_text
from tickets.models import TimeEntry
from tickets.services import contracts_valid_for, time_entry_update

REASON_MAX = 300
FIXES = {
    "mark_billable": "Mark billable",
    "route_time": "Route to contract",
    "add_device_line": "Add the device line",
    "rerate": "Re-rate to the catalogue",
}


class StaleLeak(ValidationError):
    """The leak is gone or its data changed since the page was loaded."""


def dismissed_fingerprints() -> set[tuple[str, str, str]]:
    return set(LeakDismissal.objects.values_list("kind", "key", "fingerprint"))


def leaks_open(*, today: dt.date | None = None) -> list[Leak]:
    """The leaks found now, without those dismissed while their data stays the same."""
    dismissed = dismissed_fingerprints()
    return [leak for leak in leaks_all(today=today or tenant_today())
            if (leak.kind, leak.key, leak.fingerprint) not in dismissed]


def _current(kind: str, key: str, fingerprint: str) -> Leak:
    """The leak as the page showed it, found afresh by its own rule; else ``StaleLeak``."""
    for leak in leaks_open():
        if leak.kind == kind and leak.key == key:
            if leak.fingerprint != fingerprint:
                raise StaleLeak("This leak changed since the page was loaded. Reload the page and check it again; "
                                "nothing was changed.")
            return leak
    raise StaleLeak("This leak is no longer there: it was fixed or dismissed meanwhile. Nothing was changed.")


@transaction.atomic
def leak_dismiss(*, kind: str, key: str, fingerprint: str, reason: str, acting_user) -> LeakDismissal:
    """Dismiss a leak with a reason (audited). It stays hidden while its data is the same."""
    reason = clean_text(reason or "")
    if not reason:
        raise ValidationError({"reason": "Say why this is not a leak (the audit trail keeps the reason)."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason to {REASON_MAX} characters."})
    leak = _current(kind, key, fingerprint)
    try:
        with transaction.atomic():
            dismissal = LeakDismissal.objects.create(kind=kind, key=key, fingerprint=fingerprint, reason=reason,
                                                     dismissed_by=acting_user)
    except IntegrityError as error:
        raise StaleLeak("This leak was dismissed meanwhile. Nothing was changed.") from error
    audit_record(actor=acting_user, action="leak_dismissed", obj=dismissal,
                 after={"leak": leak.label, "key": key, "amount": f"{leak.amount} {leak.currency}", "reason": reason},
                 message=leak.description)
    return dismissal


@transaction.atomic
def leak_fix(*, kind: str, key: str, fingerprint: str, acting_user, contract_id=None, unit_price=None) -> str:
    """Apply the leak's one-click fix through the owning app's services; returns what was done."""
    leak = _current(kind, key, fingerprint)
    if not leak.fix:
        raise ValidationError("This leak has no one-click fix: open the item and change it there, or dismiss it.")
    done, changed = _FIXES[leak.fix](leak, acting_user, contract_id=contract_id, unit_price=unit_price)
    audit_record(actor=acting_user, action="leak_fixed", obj=changed,
                 after={"leak": leak.label, "key": key, "amount": f"{leak.amount} {leak.currency}", "fix": done},
                 message=leak.description)
    return done


def _mark_billable(leak: Leak, user, **_):
    entries = [time_entry_update(entry_id=entry_id, billable=True) for entry_id in leak.target["entry_ids"]]
    count = len(entries)
    return f"{count} time entr{'y' if count == 1 else 'ies'} marked billable.", entries[0].ticket


def route_choices(leak: Leak):
    """The contracts a time leak may be routed to: the customer's (and parent's) active on its date."""
    entry = TimeEntry.objects.select_related("ticket__customer").get(pk=leak.target["entry_id"])
    return contracts_valid_for(entry.ticket.customer, entry.date).exclude(type=Contract.Type.ONLINE_BACKUP)


def _route_time(leak: Leak, user, *, contract_id=None, **_):
    try:
        contract = route_choices(leak).get(pk=int(contract_id))
    except (TypeError, ValueError, Contract.DoesNotExist) as error:
        raise ValidationError({"contract": "Pick one of the customer's contracts active on the entry's date."}) from error
    entry = time_entry_update(entry_id=leak.target["entry_id"], chosen_contract=contract)
    return f"Time entry routed to {contract.name}.", entry


def _add_device_line(leak: Leak, user, *, unit_price=None, **_):
    report = UnmatchedDeviceReport.objects.select_related("contract").get(pk=leak.target["report_id"])
    try:
        price = Decimal(str(unit_price).strip()) if unit_price not in (None, "") else Decimal(leak.target["unit_price"])
    except InvalidOperation as error:
        raise ValidationError({"unit_price": "Enter the price per device, such as 12.50."}) from error
    device_class = device_class_add(contract=report.contract, name=report.device_class_name, unit_price=price,
                                    acting_user=user)
    device_count_record(device_class=device_class, effective_date=max(report.reported_on, report.contract.start_date),
                        count=report.count, acting_user=user, source=report.source)
    return f"Device class “{device_class.name}” added to {report.contract.name} with {report.count} devices.", device_class


def _rerate(leak: Leak, user, **_):
    line = ContractRateLine.objects.select_related("contract", "work_type", "role").get(pk=leak.target["line_id"])
    today = tenant_today()
    new = rate_line_add(contract=line.contract, work_type=line.work_type, role=line.role, rate=Decimal(leak.target["rate"]),
                        effective_from=today, acting_user=user)
    return f"{line.contract.name}: {leak.target['rate']} from {today:%Y-%m-%d} on.", new


_FIXES = {"mark_billable": _mark_billable, "route_time": _route_time, "add_device_line": _add_device_line,
          "rerate": _rerate}
