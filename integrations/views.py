"""Integration pages: file downloads, Admin → Accounting, the sync wizard, exports, failures.

Everyone with billing access reads; changing anything needs MANAGE_BILLING (an
accountant's POST is 403; a technician gets 403 everywhere). Malformed input is 400, an
id that is not this MSP's is 404 — never 500.
"""
from __future__ import annotations

import os
import secrets

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from integrations import crypto, files, registry, selectors, services, wizard
from integrations.base import IntegrationError
from integrations.forms import FORMAT_ALIASES, ExportFileForm, ExportForm, parse_ids
from integrations.models import AccountingConnection, ExportRun, IntegrationLog, System
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability

billing = requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)


def _problem(request: HttpRequest, message: str, *, status: int = 400, title: str = "That could not be done") -> HttpResponse:
    return render(request, "integrations/problem.html", {"message": message, "title": title}, status=status)


# --- file downloads -------------------------------------------------------------------------


def _file_response(request: HttpRequest, fmt: str, ids: list[int]) -> HttpResponse:
    documents = selectors.documents_for_export(ids=ids)
    if len(documents) != len(ids):
        raise Http404("No such invoice.")
    not_exportable = [doc for doc in documents if doc.status not in selectors.EXPORTABLE_STATUSES]
    if not_exportable:
        names = ", ".join(str(doc) for doc in not_exportable[:10])
        return _problem(request, f"Only issued invoices and credit notes can be exported; not {names}.")
    options = {}
    if fmt == "xero_csv":
        options["item_codes"] = services.xero_item_codes()
    export = files.export_file(fmt, documents, **options)
    services.file_download_record(fmt=fmt, documents=documents)
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@billing
def export_file(request: HttpRequest) -> HttpResponse:
    """``?format=iif|xero_csv|csv&ids=1,2,3`` — one file for a set of invoices (the batch page links here)."""
    if not request.GET:
        return render(request, "integrations/export_file.html", {"formats": files.FORMATS})
    form = ExportFileForm(request.GET)
    if not form.is_valid():
        message = " ".join(error for errors in form.errors.values() for error in errors)
        return _problem(request, message)
    return _file_response(request, form.cleaned_data["format"], form.cleaned_data["ids"])


@billing
def invoice_export_file(request: HttpRequest, invoice_id: int, fmt: str) -> HttpResponse:
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if not selectors.documents_for_export(ids=[invoice_id]):
        raise Http404("No such invoice.")
    if fmt not in files.FORMATS:
        return _problem(request, f"Choose a file format: {', '.join(files.FORMATS)}.")
    return _file_response(request, fmt, [invoice_id])


# --- Admin → Accounting ---------------------------------------------------------------------

manage = requires(Capability.MANAGE_BILLING)
SESSION_OAUTH = "integrations_oauth"
SESSION_WIZARD = "integrations_wizard"
WIZARD_STEPS = ("welcome", "items", "customers", "import", "summary")


def _can_manage(request: HttpRequest) -> bool:
    return request.user.can(Capability.MANAGE_BILLING)


def _callback_uri(request: HttpRequest, system: str) -> str:
    return request.build_absolute_uri(reverse("integrations:callback", args=[system]))


@billing
def accounting(request: HttpRequest) -> HttpResponse:
    """Connect / reconnect / disconnect, the sync wizard, export runs, failures and the call log."""
    connections = {conn.system: conn for conn in AccountingConnection.objects.all()}
    active = registry.active_connection()
    systems = [{"system": system, "label": System(system).label, "connection": connections.get(system),
                "available": True, "set_up": not _settings_missing(system)} for system in registry.available_systems()]
    return render(request, "integrations/accounting.html", {
        "systems": systems, "active": active, "can_manage": _can_manage(request),
        "runs": selectors.recent_runs(limit=10), "failures": selectors.open_failures()[:100],
        "log": selectors.recent_log(limit=30), "owns_taxes": registry.owns_taxes(),
        "matches": selectors.matches(system=active.system) if active else None,
    })


def _settings_missing(system: str) -> list[str]:
    """What this server lacks to connect ``system``: the connector's settings and the token encryption keys."""
    missing = registry.connector_class(system).settings_missing()
    if not os.environ.get(crypto.ENV_NAME, "").strip():
        missing.append(crypto.ENV_NAME)
    return missing


@billing
def setup(request: HttpRequest, system: str) -> HttpResponse:
    """How to set a system up on this server (shown instead of connecting while settings are missing)."""
    try:
        registry.connector_class(system)
    except LookupError:
        raise Http404("No such accounting system.") from None
    return render(request, "integrations/setup.html", {
        "system": system, "label": System(system).label, "missing": _settings_missing(system),
        "callback_uri": _callback_uri(request, system)})


@billing
@require_POST
def connect(request: HttpRequest, system: str) -> HttpResponse:
    try:
        connector_class = registry.connector_class(system)
    except LookupError:
        raise Http404("No such accounting system.") from None
    if _settings_missing(system):
        return redirect("integrations:setup", system=system)
    active = registry.active_connection()
    if active is not None and active.system != system:
        return _problem(request, f"{active.get_system_display()} is connected; disconnect it first.", status=409)
    state = secrets.token_urlsafe(24)
    request.session[SESSION_OAUTH] = {"state": state, "system": system}
    try:
        url = connector_class.authorization_url(state=state, redirect_uri=_callback_uri(request, system))
    except IntegrationError as error:
        return _problem(request, error.message, status=502, title="The accounting system could not be reached")
    return redirect(url)


@manage
def callback(request: HttpRequest, system: str) -> HttpResponse:
    """Where the accounting system sends the admin back (GET, but it connects: MANAGE_BILLING)."""
    try:
        connector_class = registry.connector_class(system)
    except LookupError:
        raise Http404("No such accounting system.") from None
    pending = request.session.get(SESSION_OAUTH) or {}
    if not pending or pending.get("system") != system or request.GET.get("state") != pending.get("state"):
        return _problem(request, "This sign-in link is not the one we started (or it was used already). "
                                 "Start again from the accounting page.")
    request.session.pop(SESSION_OAUTH, None)
    if request.GET.get("error"):
        messages.error(request, f"The connection was not made: {request.GET['error']}.")
        return redirect("integrations:accounting")
    code = request.GET.get("code", "")
    if not code:
        return _problem(request, "The accounting system sent no authorization code.")
    try:
        tokens = connector_class.complete_authorization(
            code=code, redirect_uri=_callback_uri(request, system), params=request.GET.dict())
        connection = services.connection_store(system=system, tokens=tokens, acting_user=request.user)
    except IntegrationError as error:
        return _problem(request, error.message, status=502, title="Not connected")
    except ValidationError as error:
        return _problem(request, " ".join(error.messages), status=409, title="Not connected")
    messages.success(request, f"Connected to {connection.remote_name or connection.get_system_display()}.")
    if connection.wizard_completed_at is None:
        return redirect("integrations:wizard", step="welcome")
    return redirect("integrations:accounting")


def _connection_or_404(system: str) -> AccountingConnection:
    return get_object_or_404(AccountingConnection, system=system)


@manage
@require_POST
def disconnect(request: HttpRequest, system: str) -> HttpResponse:
    connection = _connection_or_404(system)
    services.connection_disconnect(connection=connection, acting_user=request.user)
    request.session.pop(SESSION_WIZARD, None)
    messages.success(request, f"Disconnected from {connection.get_system_display()}.")
    return redirect("integrations:accounting")


# --- the sync wizard ---------------------------------------------------------------------------


def _wizard_state(request: HttpRequest, connection: AccountingConnection, *, refresh: bool = False) -> dict:
    state = request.session.get(SESSION_WIZARD)
    if refresh or not state or state.get("system") != connection.system:
        remote = wizard.wizard_fetch(connection=connection)
        items = wizard.item_proposals(system=connection.system, remote_items=remote["items"])
        customers = wizard.customer_proposals(system=connection.system, remote_customers=remote["customers"])
        state = {"system": connection.system, "remote": remote, "items": wizard.initial_choices(items),
                 "customers": wizard.initial_choices(customers, fit=wizard.customer_fit(remote["customers"])),
                 "imports": []}
        request.session[SESSION_WIZARD] = state
    return state


def _choice_rows(proposals, choices: dict, remote_rows: list[dict]) -> list[dict]:
    """One row per local record: its proposal, the current choice, and the remote records besides its suggestions."""
    rows = []
    for p in proposals:
        suggested = {s.remote_id for s in p.suggestions}
        rows.append({"proposal": p, "choice": choices.get(p.local_key, wizard.SKIP),
                     "field": "choice-" + p.local_key.replace(":", "-"),
                     "others": [row for row in remote_rows if row["id"] not in suggested]})
    return rows


@billing
def wizard_step(request: HttpRequest, step: str) -> HttpResponse:
    if step not in WIZARD_STEPS:
        raise Http404("No such step.")
    connection = registry.active_connection()
    if connection is None or not connection.is_usable:
        messages.error(request, "The sync wizard matches your records with a connected accounting system: "
                                "connect (or reconnect) QuickBooks Online or Xero here first.")
        return redirect("integrations:accounting")
    if request.method == "POST" and not _can_manage(request):
        raise PermissionDenied("Your role may look at this page but not change it.")
    try:
        state = _wizard_state(request, connection, refresh=(step == "welcome" and request.method == "GET"))
    except IntegrationError as error:
        return _problem(request, error.message, status=502, title="The accounting system could not be reached")
    remote = state["remote"]
    items = wizard.item_proposals(system=connection.system, remote_items=remote["items"])
    customers = wizard.customer_proposals(system=connection.system, remote_customers=remote["customers"])
    errors: list[str] = []
    if request.method == "POST":
        if step in ("items", "customers"):
            proposals = items if step == "items" else customers
            valid = {row["id"] for row in remote[step]} | {wizard.CREATE, wizard.SKIP}
            chosen = dict(state[step])
            for proposal in proposals:
                value = request.POST.get("choice-" + proposal.local_key.replace(":", "-"))
                if value is None:
                    continue
                if value not in valid:
                    errors.append(f"{proposal.local_name}: choose one of the listed entries.")
                    continue
                chosen[proposal.local_key] = value
            bulk = request.POST.get("bulk", "")
            if bulk not in ("", "suggestions", "create"):
                errors.append("Choose “Accept all suggestions” or “Create all”.")
            if not errors:
                if bulk == "suggestions":
                    fit = {"fit": wizard.customer_fit(remote["customers"])} if step == "customers" else {}
                    chosen = wizard.accept_suggestions(proposals, chosen, **fit)
                elif bulk == "create":
                    chosen = wizard.create_all(proposals, chosen)
                state[step] = chosen
                if bulk:  # stay on the step: the admin sees what changed before going on
                    request.session[SESSION_WIZARD] = state
                    request.session.modified = True
                    return redirect("integrations:wizard", step=step)
        elif step == "import":
            importable = {row["id"] for row in wizard.importable_customers(
                system=connection.system, remote_customers=remote["customers"], customer_choices=state["customers"],
                proposals=customers)}
            picked = request.POST.getlist("import")
            if any(rid not in importable for rid in picked):
                errors.append("Choose customers to import from the list.")
            else:
                state["imports"] = picked
        elif step == "summary":
            try:
                summary = wizard.wizard_complete(connection=connection, remote=remote, item_choices=state["items"],
                                                 customer_choices=state["customers"], imports=state["imports"],
                                                 acting_user=request.user)
            except ValidationError as error:
                errors.extend(error.messages)
            except IntegrationError as error:
                errors.append(f"{connection.get_system_display()} refused: {error.message}")
            else:
                request.session.pop(SESSION_WIZARD, None)
                messages.success(request, f"Saved: {summary.matched_items + summary.created_items} items and "
                                          f"{summary.matched_customers + summary.created_customers} customers matched, "
                                          f"{summary.imported_customers} imported.")
                return redirect("integrations:accounting")
        if not errors:
            request.session[SESSION_WIZARD] = state
            request.session.modified = True
            following = WIZARD_STEPS[WIZARD_STEPS.index(step) + 1] if step != "summary" else "summary"
            return redirect("integrations:wizard", step=following)
    context = {
        "step": step, "steps": WIZARD_STEPS, "connection": connection, "errors": errors, "can_manage": _can_manage(request),
        "remote_items": remote["items"], "remote_customers": remote["customers"],
        "item_rows": _choice_rows(items, state["items"], remote["items"]),
        "customer_rows": _choice_rows(customers, state["customers"], remote["customers"]),
        "importable": wizard.importable_customers(system=connection.system, remote_customers=remote["customers"],
                                                  customer_choices=state["customers"], proposals=customers),
        "imports": state["imports"],
        "summary": wizard.wizard_summary(item_choices=state["items"], customer_choices=state["customers"],
                                         imports=state["imports"]),
        "previous": WIZARD_STEPS[WIZARD_STEPS.index(step) - 1] if step != "welcome" else None,
    }
    return render(request, "integrations/wizard.html", context, status=400 if errors else 200)


# --- exports, runs, payments, failures -------------------------------------------------------


@manage
@require_POST
def export(request: HttpRequest) -> HttpResponse:
    """POST ``ids=1,2,3`` (or one ``ids``): export to the connected system in the background."""
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _problem(request, " ".join(e for errors in form.errors.values() for e in errors))
    ids = form.cleaned_data["ids"]
    documents = selectors.documents_for_export(ids=ids)
    if len(documents) != len(ids):
        raise Http404("No such invoice.")
    try:
        run = services.export_run_create(document_ids=ids, acting_user=request.user)
    except ValidationError as error:
        return _problem(request, " ".join(error.messages), status=409, title="Not exported")
    return redirect("integrations:run", run_id=run.pk)


@manage
def export_confirm(request: HttpRequest) -> HttpResponse:
    """GET ``?invoice=1&invoice=2`` (the invoice list's selection): what will be exported, then Export (POST)."""
    values = request.GET.getlist("invoice")
    if not values:
        messages.error(request, "Select the invoices to export first.")
        return redirect("invoices:list")
    try:
        ids = parse_ids(",".join(values))
    except ValidationError as error:
        return _problem(request, " ".join(error.messages))
    documents = selectors.documents_for_export(ids=ids)
    if len(documents) != len(ids):
        raise Http404("No such invoice.")
    connection = registry.active_connection()
    if connection is None or not connection.is_usable:
        return _problem(request, "Connect (or reconnect) an accounting system first (Admin → Accounting).", status=409,
                        title="Not exported")
    refusals = [(doc, refusal) for doc in documents if (refusal := services.export_refusal(doc, system=connection.system))]
    return render(request, "integrations/export_confirm.html", {
        "documents": documents, "refusals": refusals, "system": connection.get_system_display(),
        "already": [doc for doc in documents if doc.exported_to == connection.system],
        "ids": ",".join(str(doc.pk) for doc in documents),
    }, status=409 if refusals else 200)


@billing
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ExportRun, pk=run_id)
    documents = selectors.documents_for_export(ids=run.document_ids[:500]) if run.document_ids else []
    context = {"run": run, "documents": documents, "failures": run.logs.filter(outcome="failed", resolved_at__isnull=True,
                                                                                invoice__isnull=False)}
    template = "integrations/_run_progress.html" if getattr(request, "htmx", False) else "integrations/run.html"
    return render(request, template, context)


@manage
@require_POST
def payments_pull(request: HttpRequest) -> HttpResponse:
    connection = registry.active_connection()
    if connection is None or not connection.is_usable:
        return _problem(request, "Connect (or reconnect) an accounting system first.", status=409)
    services.payments_pull_later()
    messages.success(request, "Payments are being fetched; paid invoices update in a moment.")
    return redirect("integrations:accounting")


@manage
@require_POST
def failure_retry(request: HttpRequest, log_id: int) -> HttpResponse:
    get_object_or_404(IntegrationLog, pk=log_id)
    try:
        run = services.failure_retry(log_id=log_id, acting_user=request.user)
    except ValidationError as error:
        return _problem(request, " ".join(error.messages), status=409)
    if run is not None:
        return redirect("integrations:run", run_id=run.pk)
    messages.success(request, "Done.")
    return redirect("integrations:accounting")


@manage
@require_POST
def failure_resolve(request: HttpRequest, log_id: int) -> HttpResponse:
    get_object_or_404(IntegrationLog, pk=log_id)
    services.failure_resolve(log_id=log_id, acting_user=request.user)
    messages.success(request, "Marked resolved.")
    return redirect("integrations:accounting")
