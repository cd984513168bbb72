"""Importing time entries from a CSV file: upload → preview (accepted and rejected rows) → confirm.

The uploaded text stays on the server, in the admin's session, between the two steps;
the browser only carries a random token in the URL and the fingerprint of the preview it
was shown. A confirmation whose fingerprint is not the one shown is refused as tampered
(400); one for an upload that expired, was already imported, or whose data changed since
the preview is refused as stale (409). Nothing is imported in either case.
"""
from __future__ import annotations

import secrets
import time

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from onboarding.forms import TimeCsvConfirmForm, TimeCsvUploadForm
from onboarding.importing_csv import (
    COLUMNS,
    LABELS,
    MAX_BYTES,
    CsvFileError,
    CsvPreviewStale,
    time_csv_decode,
    time_csv_import,
    time_csv_preview,
)

SESSION_KEY = "billing_time_csv_uploads"
MAX_AGE_SECONDS = 60 * 60
KEPT_UPLOADS = 3


def _uploads(request) -> dict:
    uploads = request.session.get(SESSION_KEY, {})
    now = time.time()
    fresh = {token: upload for token, upload in uploads.items() if now - upload.get("at", 0) <= MAX_AGE_SECONDS}
    if len(fresh) != len(uploads):
        request.session[SESSION_KEY] = fresh
    return fresh


def _store(request, *, text: str, filename: str, fingerprint: str) -> str:
    uploads = _uploads(request)
    token = secrets.token_urlsafe(18)
    uploads[token] = {"text": text, "filename": filename, "fingerprint": fingerprint, "at": time.time()}
    # Keep the session small: only the latest few uploads wait for confirmation.
    newest = sorted(uploads.items(), key=lambda item: item[1]["at"])[-KEPT_UPLOADS:]
    request.session[SESSION_KEY] = dict(newest)
    return token


def _forget(request, token: str) -> None:
    uploads = _uploads(request)
    uploads.pop(token, None)
    request.session[SESSION_KEY] = uploads


def _refused(request, *, title: str, message: str, status: int, token: str | None = None):
    return render(request, "onboarding/import_time_csv_refused.html",
                  {"title": title, "message": message, "token": token}, status=status)


def _column_help() -> list[tuple[str, str, bool]]:
    required = {"date", "customer", "ticket", "technician", "work_type"}
    return [(LABELS[name], ", ".join(COLUMNS[name]), name in required) for name in COLUMNS]


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def time_csv_upload(request):
    form = TimeCsvUploadForm(request.POST, request.FILES) if request.method == "POST" else TimeCsvUploadForm()
    can_manage = request.user.can(Capability.MANAGE_BILLING)
    context = {"form": form, "columns": _column_help(), "can_manage": can_manage}
    if request.method != "POST":
        return render(request, "onboarding/import_time_csv.html", context)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            text = time_csv_decode(upload.read(MAX_BYTES + 1))
            preview = time_csv_preview(text=text)
        except CsvFileError as error:
            form.add_error("file", str(error))
        else:
            token = _store(request, text=text, filename=upload.name, fingerprint=preview.fingerprint)
            return redirect(reverse("billing:import_time_csv_preview", kwargs={"token": token}))
    return render(request, "onboarding/import_time_csv.html", context, status=400)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def time_csv_preview_view(request, token: str):
    upload = _uploads(request).get(token)
    if upload is None:
        return _refused(
            request, title="This upload is no longer waiting",
            message=("The uploaded file has expired, was already imported, or was uploaded in another session. "
                     "Nothing was imported from it now. Upload the file again to import it."),
            status=409 if request.method == "POST" else 404)
    if request.method == "POST":
        return _confirm(request, token, upload)
    try:
        preview = time_csv_preview(text=upload["text"])
    except CsvFileError as error:  # the data cannot change the file's shape, but be safe
        _forget(request, token)
        return _refused(request, title="The file cannot be imported", message=str(error), status=400)
    # The confirmation must carry the fingerprint of exactly this preview.
    upload["fingerprint"] = preview.fingerprint
    request.session.modified = True
    return render(request, "onboarding/import_time_csv_preview.html", {
        "preview": preview, "filename": upload["filename"], "token": token,
        "confirm_form": TimeCsvConfirmForm(initial={"fingerprint": preview.fingerprint}),
        "can_manage": request.user.can(Capability.MANAGE_BILLING),
    })


def _confirm(request, token: str, upload: dict):
    form = TimeCsvConfirmForm(request.POST)
    if not form.is_valid() or not secrets.compare_digest(form.cleaned_data["fingerprint"], upload["fingerprint"]):
        return _refused(
            request, title="Confirmation refused",
            message=("This confirmation does not match the preview you were shown, so nothing was imported. "
                     "Open the preview again and confirm from there."),
            status=400, token=token)
    try:
        result = time_csv_import(text=upload["text"], fingerprint=upload["fingerprint"], acting_user=request.user)
    except CsvPreviewStale as error:
        return _refused(request, title="The preview is out of date", message=str(error), status=409, token=token)
    _forget(request, token)
    minutes = sum(entry.minutes for entry in result.entries)
    text = (f"Imported {len(result.entries)} time entries ({minutes // 60} h {minutes % 60:02d} min) "
            f"from {upload['filename']}")
    if result.new_tickets:
        text += f"; opened {len(result.new_tickets)} new ticket(s)"
    if result.rejected_rows:
        text += f"; skipped {result.rejected_rows} rejected row(s)"
    messages.success(request, text + ".")
    return redirect(reverse("billing:import_time_csv"))
