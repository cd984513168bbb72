"""Tickets and time: what technicians use all day, often on a phone. Amounts only for billing roles."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from contracts.models import Contract, Customer
from contracts.selectors import block_balances
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.crud import Filter, choice_filter, list_page, model_filter
from msp_billing.forms import add_service_errors
from msp_billing.tenants.today import tenant_today
from tickets import selectors, services, timers
from tickets.forms import ChargeForm, TicketForm, TicketStatusForm, TimeEntryForm
from tickets.models import Ticket, TimeEntry


def _sees_money(request) -> bool:
    return request.user.can(Capability.VIEW_BILLING)


def _form_errors(form, error: ValidationError) -> None:
    add_service_errors(form, error, aliases={"minutes": "duration", "billable_minutes": "billable_time"})


def _ticket_or_404(ticket_id: int) -> Ticket:
    try:
        return selectors.ticket_detail(ticket_id=ticket_id)
    except Ticket.DoesNotExist:
        raise Http404("No such ticket.") from None


TICKET_SCOPES = {"mine": "My open tickets", "all": "All tickets"}


@dataclass(frozen=True)
class ScopeFilter(Filter):
    """``?scope=mine``: the tickets assigned to the user that are not done; ``all``: every ticket."""

    user: object = None

    def apply(self, queryset, value):
        return selectors.open_tickets_of(queryset, user=self.user) if value == "mine" else queryset


@requires(Capability.LOG_TIME)
def ticket_list(request):
    """A technician lands on their own open tickets; billing people on all of them. Either can switch."""
    if not request.GET.get("scope"):
        request.GET = request.GET.copy()
        request.GET["scope"] = "all" if _sees_money(request) else "mine"
    scope_field = forms.ChoiceField(label="Show", required=False, choices=list(TICKET_SCOPES.items()))
    listing = list_page(
        request,
        selectors.ticket_list(),
        search_fields=["title", "customer__legal_name", "customer__display_name"],
        filters=[
            ScopeFilter(name="scope", field=scope_field, lookup="scope", user=request.user),
            choice_filter("status", "Status", choices=Ticket.Status.choices),
            model_filter("customer", "Customer", queryset=Customer.objects.all()),
        ],
    )
    scope = request.GET["scope"] if request.GET["scope"] in TICKET_SCOPES else "all"
    context = {"listing": listing, "scope": scope, "scopes": TICKET_SCOPES, "scope_label": TICKET_SCOPES[scope]}
    return render(request, "tickets/ticket_list.html", context, status=listing.status)


@requires(Capability.LOG_TIME)
def ticket_create(request):
    form = TicketForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_create(technician=request.user, **form.cleaned_data)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Ticket #{ticket.pk} created.")
            return redirect("tickets:detail", ticket_id=ticket.pk)
    return render(request, "tickets/ticket_form.html", {"form": form}, status=400 if form.errors else 200)


def _timer_prefill(request) -> dict:
    """The time form's start values after the timer was stopped (``?timer_minutes=&timer_date=``)."""
    raw = request.GET.get("timer_minutes", "")
    if not raw.isdigit() or not 0 < int(raw) <= services.MAX_MINUTES_PER_ENTRY:
        return {}
    initial = {"duration": raw}
    try:
        initial["date"] = dt.date.fromisoformat(request.GET.get("timer_date", ""))
    except ValueError:
        pass
    return initial


def _ticket_page(request, ticket: Ticket, *, time_form=None, charge_form=None, status: int = 200):
    sees_all = _sees_money(request)
    contracts = services.contracts_valid_for(ticket.customer)
    timer = timers.timer_running(user=request.user, ticket=ticket)
    context = {
        "ticket": ticket,
        "timer": timer,
        "timer_seconds": int((timezone.now() - timer.started_at).total_seconds()) if timer else 0,
        "entries": selectors.time_entries_for_ticket(ticket=ticket, user=request.user, sees_all=sees_all),
        "charges": selectors.charges_for_ticket(ticket=ticket) if sees_all else None,
        "time_form": time_form or TimeEntryForm(contracts=contracts, initial=_timer_prefill(request)),
        "charge_form": charge_form or ChargeForm(with_prices=sees_all),
        "status_form": TicketStatusForm(initial={"status": ticket.status}),
        "sees_money": sees_all,
    }
    return render(request, "tickets/ticket_detail.html", context, status=status)


@requires(Capability.LOG_TIME)
def ticket_detail(request, ticket_id: int):
    return _ticket_page(request, _ticket_or_404(ticket_id))


@requires(Capability.LOG_TIME)
def time_entry_create(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    if request.method != "POST":
        return redirect("tickets:detail", ticket_id=ticket.pk)
    form = TimeEntryForm(request.POST, contracts=services.contracts_valid_for(ticket.customer))
    if form.is_valid():
        try:
            entry = services.time_entry_log(ticket=ticket, technician=request.user, **form.service_kwargs())
        except ValidationError as error:
            _form_errors(form, error)
        else:
            where = ", ".join(a.contract.name for a in entry.allocations.all() if a.contract) or "unrouted — billing will review it"
            messages.success(request, f"Logged {entry.minutes} minutes of {entry.work_type}: {where}.")
            return redirect("tickets:detail", ticket_id=ticket.pk)
    return _ticket_page(request, ticket, time_form=form, status=400)


@requires(Capability.LOG_TIME)
@require_POST
def timer_start(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    try:
        timers.timer_start(user=request.user, ticket=ticket)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _ticket_page(request, ticket, status=409)
    return redirect("tickets:detail", ticket_id=ticket.pk)


@requires(Capability.LOG_TIME)
@require_POST
def timer_stop(request, ticket_id: int):
    """Stop the timer and open the time form with the elapsed minutes filled in (nothing is logged yet)."""
    ticket = _ticket_or_404(ticket_id)
    try:
        stopped = timers.timer_stop(user=request.user, ticket=ticket)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _ticket_page(request, ticket, status=409)
    messages.info(request, f"Timer stopped at {stopped.minutes} min. Pick the work type and log the time.")
    query = urlencode({"timer_minutes": stopped.minutes, "timer_date": timezone.localdate(stopped.started_at).isoformat()})
    return redirect(f"{reverse('tickets:detail', args=[ticket.pk])}?{query}#log-h")


@requires(Capability.LOG_TIME)
def route_preview(request, ticket_id: int):
    """htmx: where would this time go? Runs the real routing and rolls it back."""
    ticket = _ticket_or_404(ticket_id)
    form = TimeEntryForm(request.GET, contracts=services.contracts_valid_for(ticket.customer))
    preview = None
    if form.is_valid():
        try:
            with transaction.atomic():
                entry = services.time_entry_log(ticket=ticket, technician=request.user, **form.service_kwargs())
                allocations = list(entry.allocations.select_related("contract"))
                preview = {"entry": entry, "allocations": allocations, "low_blocks": _hour_blocks_running_low(allocations)}
                transaction.set_rollback(True)
        except ValidationError as error:
            _form_errors(form, error)
    return render(request, "tickets/_route_preview.html", {"preview": preview, "form": form, "sees_money": _sees_money(request)})


def _hour_blocks_running_low(allocations) -> list:
    """Block Hours contracts this entry draws on whose balance, with the entry counted, is low.

    Hours only: a Block Money balance is money, which technicians never see."""
    contracts = {a.contract.pk: a.contract for a in allocations
                 if a.contract is not None and a.contract.type == Contract.Type.BLOCK_HOURS}
    balances = block_balances(contracts=contracts.values(), today=tenant_today())
    return [{"contract": contracts[pk], "balance": balance} for pk, balance in balances.items() if balance.is_low]


@requires(Capability.LOG_TIME)
def ticket_status(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    form = TicketStatusForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.ticket_set_status(ticket_id=ticket.pk, status=form.cleaned_data["status"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return _ticket_page(request, ticket, status=409)
        messages.success(request, f"Ticket #{ticket.pk} is now {ticket.__class__.Status(form.cleaned_data['status']).label.lower()}.")
    elif request.method == "POST":
        messages.error(request, "Pick a valid status.")
        return _ticket_page(request, ticket, status=400)
    return redirect("tickets:detail", ticket_id=ticket.pk)


@requires(Capability.LOG_TIME)
def time_entry_detail(request, entry_id: int):
    try:
        entry = selectors.time_entry_visible(entry_id=entry_id, user=request.user, sees_all=_sees_money(request))
    except TimeEntry.DoesNotExist:
        raise Http404("No such time entry.") from None
    return render(request, "tickets/time_entry_detail.html", {"entry": entry, "sees_money": _sees_money(request)})


@requires(Capability.LOG_TIME)
def time_entry_delete(request, entry_id: int):
    try:
        entry = selectors.time_entry_visible(entry_id=entry_id, user=request.user, sees_all=_sees_money(request))
    except TimeEntry.DoesNotExist:
        raise Http404("No such time entry.") from None
    if request.method != "POST":
        return redirect("tickets:time_entry", entry_id=entry.pk)
    try:
        services.time_entry_delete(entry_id=entry.pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return render(request, "tickets/time_entry_detail.html", {"entry": entry, "sees_money": _sees_money(request)}, status=409)
    messages.success(request, "Time entry deleted.")
    return redirect("tickets:detail", ticket_id=entry.ticket_id)


@requires(Capability.LOG_TIME)
def charge_create(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    if request.method != "POST":
        return redirect("tickets:detail", ticket_id=ticket.pk)
    form = ChargeForm(request.POST, with_prices=_sees_money(request))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.charge_log(ticket=ticket, product=data["product"], description=data["description"], date=data["date"],
                                quantity=data["quantity"], unit_price=data.get("unit_price"))
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, "Charge added.")
            return redirect("tickets:detail", ticket_id=ticket.pk)
    return _ticket_page(request, ticket, charge_form=form, status=400)


@requires(Capability.LOG_TIME)
def my_time(request):
    listing = list_page(request, selectors.my_time(user=request.user), search_fields=["ticket__title", "notes"])
    return render(request, "tickets/my_time.html", {"listing": listing, "sees_money": _sees_money(request)}, status=listing.status)


@requires(Capability.VIEW_BILLING)
def unrouted(request):
    listing = list_page(request, selectors.unrouted_entries(), search_fields=["ticket__title", "ticket__customer__legal_name"])
    context = {"listing": listing, "charges": selectors.unrouted_charges()}
    return render(request, "tickets/unrouted.html", context, status=listing.status)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def recalculate_unbilled(request):
    if request.method == "POST":
        count = services.unbilled_recalculate()
        messages.success(request, f"Re-routed and re-rated {count} unbilled time entries.")
    return redirect("tickets:unrouted")




@requires(Capability.MANAGE_SETTINGS)
def technician_roles(request):
    """Settings → Technician roles: which labour role each person's time is rated at."""
    from contracts.models import Role
    from msp_billing.accounts.models import User
    from tickets.models import TechnicianProfile

    people = User.objects.filter(is_active=True).order_by("email")
    roles = Role.objects.order_by("name")
    if request.method == "POST":
        try:
            user = people.get(pk=int(request.POST.get("user", "")))
            role = roles.get(pk=int(request.POST.get("role", "")))
        except (ValueError, User.DoesNotExist, Role.DoesNotExist):
            messages.error(request, "Pick a person and a role from the lists.")
        else:
            services.technician_role_set(user=user, role=role)
            messages.success(request, f"{user} now logs time as {role}.")
            return redirect("tickets:technician_roles")
    profiles = {p.user_id: p.role_id for p in TechnicianProfile.objects.all()}
    rows = [{"user": person, "role_id": profiles.get(person.pk)} for person in people]
    status = 400 if request.method == "POST" else 200
    return render(request, "tickets/technician_roles.html", {"rows": rows, "roles": roles}, status=status)
