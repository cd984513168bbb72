"""Who calculates taxes: this product, or a connected accounting system.

While an accounting system that computes taxes itself is connected (QuickBooks Online),
the tax fields of tax rates, customers, contracts, invoice lines and the invoice settings
are shown disabled with a short note, and a posted value for them is ignored (tax-rate
pages, where every field is a tax field, refuse the save instead).

The core apps (contracts/, invoices/) ask :func:`tax_owner`; integrations/ answers by
registering a provider at start-up (``AppConfig.ready``), so the core never imports it
(docs/architecture.md). The answer is read from the live connection on every request, so there
is no flag to keep in step with connect / disconnect.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from msp_billing.hooks import hook_add, hook_remove

TaxOwnerProvider = Callable[[], str]

_providers: list[TaxOwnerProvider] = []


def register_tax_owner(provider: TaxOwnerProvider) -> TaxOwnerProvider:
    """``provider()`` returns the name of the system that owns taxes right now, or ``""``.

    Registering the same function twice has no effect.
    """
    return hook_add(_providers, provider)


def unregister_tax_owner(provider: TaxOwnerProvider) -> None:
    hook_remove(_providers, provider)


def tax_owner() -> str:
    """The name of the system that calculates taxes now (e.g. "QuickBooks Online"), or ``""``: we do."""
    for provider in _providers:
        owner = provider()
        if owner:
            return owner
    return ""


def tax_owner_note(owner: str) -> str:
    return f"{owner} calculates taxes while it is connected."


def lock_tax_fields(form, names: Iterable[str], *, owner: str | None = None, note_on: Iterable[str] | None = None) -> str:
    """Disable the tax fields ``names`` of ``form`` while a system owns taxes; returns the owner ("" : nothing locked).

    A disabled Django field renders ``disabled`` and ignores whatever is posted for it:
    the form's initial value (the stored one on edit pages) is what it cleans to.
    ``note_on``: the fields that carry the note as help text (default: every locked one).
    """
    owner = tax_owner() if owner is None else owner
    if not owner:
        return ""
    names = [name for name in names if name in form.fields]
    noted = set(names if note_on is None else note_on)
    for name in names:
        field = form.fields[name]
        field.disabled = True
        if name in noted:
            field.help_text = tax_owner_note(owner)
    return owner
