"""The Leaks page (billing admins and owners act; accountants read), its fix and dismiss actions,
and the what-if of a contract."""
from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leaks.services import FIXES, StaleLeak, leak_dismiss, leak_fix, leaks_open, route_choices
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.tenants.today import tenant_today

FIELD_MAX = 120


def totals_by_currency(leaks) -> dict[str, object]:
    totals = defaultdict(lambda: 0)
    for leak in leaks:
        totals[leak.currency] += leak.amount
    return dict(sorted(totals.items()))


def _rows(leaks, *, can_fix: bool):
    rows = []
    for leak in leaks:
        choices = list(route_choices(leak)) if can_fix and leak.fix == "route_time" else []
        fixable = can_fix and leak.fix in FIXES and (leak.fix != "route_time" or choices)
        rows.append({"leak": leak, "fix_label": FIXES.get(leak.fix, ""), "fixable": fixable, "choices": choices})
    return rows


def _page(request, *, status: int = 200, error: str = ""):
    leaks = leaks_open(today=tenant_today())
    can_fix = request.user.can(Capability.MANAGE_BILLING)
    context = {"rows": _rows(leaks, can_fix=can_fix), "totals": totals_by_currency(leaks), "can_fix": can_fix,
               "error": error, "count": len(leaks)}
    return render(request, "leaks/list.html", context, status=status)


TOP = 3


@requires(Capability.VIEW_BILLING)
def leak_card(request):
    """The dashboard's card: the total per currency and the largest leaks (loaded after the dashboard)."""
    leaks = leaks_open(today=tenant_today())
    return render(request, "leaks/_card.html", {"count": len(leaks), "totals": totals_by_currency(leaks), "top": leaks[:TOP]})


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def leak_list(request):
    return _page(request)


def _posted(request) -> tuple[str, str, str]:
    return tuple((request.POST.get(name) or "")[:FIELD_MAX] for name in ("kind", "key", "fingerprint"))


def _refused(request, error: ValidationError):
    status = 409 if isinstance(error, StaleLeak) else 400
    text = " ".join(message for messages_ in getattr(error, "message_dict", {"": error.messages}).values() for message in messages_)
    return _page(request, status=status, error=text)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
@require_POST
def leak_fix_view(request):
    kind, key, fingerprint = _posted(request)
    try:
        done = leak_fix(kind=kind, key=key, fingerprint=fingerprint, acting_user=request.user,
                        contract_id=request.POST.get("contract"), unit_price=request.POST.get("unit_price"))
    except ValidationError as error:
        return _refused(request, error)
    messages.success(request, f"Fixed: {done}")
    return redirect("leaks:list")


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
@require_POST
def leak_dismiss_view(request):
    kind, key, fingerprint = _posted(request)
    try:
        leak_dismiss(kind=kind, key=key, fingerprint=fingerprint, reason=request.POST.get("reason", ""),
                     acting_user=request.user)
    except ValidationError as error:
        return _refused(request, error)
    messages.success(request, "Dismissed. It comes back if its data changes.")
    return redirect("leaks:list")


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def contract_what_if(request, contract_id: int):
    """Last month re-rated as if the contract's customer were on another contract; nothing changes."""
    from django.shortcuts import get_object_or_404

    from contracts.models import Contract
    from leaks.whatif import what_if

    contract = get_object_or_404(Contract.objects.select_related("customer"), pk=contract_id)
    options = Contract.objects.filter(currency=contract.currency).exclude(pk=contract.pk).exclude(
        type=Contract.Type.ONLINE_BACKUP).select_related("customer").order_by("customer__legal_name", "name")
    context = {"contract": contract, "options": options, "result": None, "error": ""}
    chosen = request.GET.get("alternative", "")
    if chosen:
        alternative = options.filter(pk=int(chosen)).first() if chosen.isdigit() else None
        if alternative is None:
            context["error"] = "Pick one of the listed contracts to compare with."
            return render(request, "leaks/what_if.html", context, status=400)
        context["result"] = what_if(contract=contract, alternative=alternative, today=tenant_today())
        context["alternative"] = alternative
    return render(request, "leaks/what_if.html", context)
