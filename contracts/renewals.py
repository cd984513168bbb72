"""Auto-renewal: a notice N days before a contract ends, then an extension on its end date.

docs/design.md § Contracts: auto-renewal — notify N days before the end, then extend by
the term. For an active contract with ``auto_renew`` and an end date:

* from ``end_date − renewal_notice_days`` up to the end date, a *renewal notice* is
  stored and e-mailed once per end date (key ``renewal:<contract>:<end date>``), so a run
  that missed the exact day still sends it, and each renewed term gets its own notice;
* on the end date (or the first run after it), the end date moves by
  ``renewal_term_months``: the new term starts the day after the old end
  (31 Dec 2026 + 12 months → 31 Dec 2027; 28 Feb 2027 + 12 → 29 Feb 2028). A *renewed*
  notification (key ``renewed:<contract>:<old end date>``) records it. Periods continue
  because period generation reads the new end date.

A term of 0 months renews nothing (the notice is still sent, as a reminder).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction

from contracts.models import Contract, Notification
from contracts.notifications import notification_send_once
from contracts.periods import contract_periods_generate, term_end
from msp_billing.audit.services import audit_record
from msp_billing.templatetags.formatting import day as format_day

_ONE_DAY = dt.timedelta(days=1)


@dataclass
class RenewalRun:
    notices: list[Notification] = field(default_factory=list)
    renewed: list[Notification] = field(default_factory=list)


def contract_renewals_process(*, today: dt.date) -> RenewalRun:
    """Send due renewal notices and extend contracts that reach their end date."""
    run = RenewalRun()
    candidates = Contract.objects.filter(
        status=Contract.Status.ACTIVE, auto_renew=True, end_date__isnull=False
    ).order_by("pk")
    for contract_id in candidates.values_list("pk", flat=True):
        notices, renewed = contract_renewal_process(contract_id=contract_id, today=today)
        run.notices.extend(notices)
        run.renewed.extend(renewed)
    return run


@transaction.atomic
def contract_renewal_process(*, contract_id: int, today: dt.date) -> tuple[list[Notification], list[Notification]]:
    contract = Contract.objects.select_for_update().select_related("customer").get(pk=contract_id)
    notices: list[Notification] = []
    renewed: list[Notification] = []
    if contract.status != Contract.Status.ACTIVE or not contract.auto_renew or contract.end_date is None:
        return notices, renewed
    # Catch up first: a contract whose end date passed while no run happened is extended
    # term by term until it runs past today, each extension recorded.
    extended = False
    while contract.renewal_term_months and contract.end_date <= today:
        extended = True
        old_end = contract.end_date
        contract.end_date = term_end(start=old_end + _ONE_DAY, months=contract.renewal_term_months)
        contract.save(update_fields=["end_date", "updated_at"])
        audit_record(actor=None, action="contract_renewed", obj=contract, before={"end_date": old_end},
                     after={"end_date": contract.end_date},
                     message=f"Renewed automatically for {_months(contract.renewal_term_months)}")
        notification = notification_send_once(
            kind=Notification.Kind.RENEWED,
            key=f"renewed:{contract.pk}:{old_end.isoformat()}",
            contract=contract,
            subject=f"Contract renewed: {contract}",
            message=(
                f"{contract} reached its end date {format_day(old_end)} and renewed automatically for "
                f"{_months(contract.renewal_term_months)}: it now ends on {format_day(contract.end_date)}."
            ),
        )
        if notification:
            renewed.append(notification)
    if extended:
        # The new term's periods are stored with the renewal.
        contract_periods_generate(contract=contract, today=today)
    notice_from = contract.end_date - dt.timedelta(days=contract.renewal_notice_days)
    if notice_from <= today <= contract.end_date:
        if contract.renewal_term_months:
            renewal = (
                f"renews automatically for {_months(contract.renewal_term_months)}, to "
                f"{format_day(term_end(start=contract.end_date + _ONE_DAY, months=contract.renewal_term_months))}, "
                "unless it is changed or cancelled before then."
            )
        else:
            renewal = "is set to renew automatically, but its renewal term is 0 months: set a term or end it."
        notification = notification_send_once(
            kind=Notification.Kind.RENEWAL,
            key=f"renewal:{contract.pk}:{contract.end_date.isoformat()}",
            contract=contract,
            subject=f"Renewal notice: {contract} ends on {format_day(contract.end_date)}",
            message=f"{contract} ends on {format_day(contract.end_date)} and {renewal}",
        )
        if notification:
            notices.append(notification)
    return notices, renewed


def _months(months: int) -> str:
    return f"{months} month" + ("" if months == 1 else "s")
