"""The audit trail in the admin's words: "Batch run", "Contract Acme — Gold Remote".

Events store a short action code (``batch_run``) and the object's ``app_label.model``;
those stay the stored keys (filters and the CSV keep them). Pages show these labels.
"""
from __future__ import annotations

from django.apps import apps

# Action codes whose words need more than spaces: the rest read well as they are
# (``batch_run`` → "Batch run").
ACTION_LABELS = {
    "accounting_connected": "Accounting system connected",
    "accounting_disconnected": "Accounting system disconnected",
    "accounting_sync_done": "Accounting sync finished",
    "batch_generated": "Invoices generated",
    "batch_invoice_deleted": "Draft invoice deleted from the batch",
    "block_purchase_add": "Block bought",
    "contract_create": "Contract created",
    "contract_update": "Contract changed",
    "customer_checked": "Customer checked",
    "customer_create": "Customer created",
    "customer_update": "Customer changed",
    "device_class_add": "Device class added",
    "device_count_record": "Device count recorded",
    "device_report_unmatched": "Device count without a device class",
    "api_token_create": "API token created",
    "api_token_revoke": "API token revoked",
    "exclusion_set_create": "Exclusion set created",
    "exclusion_set_update": "Exclusion set changed",
    "invoice_draft_deleted": "Draft invoice deleted",
    "invoice_edited": "Invoice changed",
    "invoice_email_queued": "Invoice e-mail queued",
    "invoice_emailed": "Invoice e-mailed",
    "invoice_exported": "Invoice exported to accounting",
    "invoice_settings_updated": "Invoice settings changed",
    "invoice_branding_updated": "Invoice branding changed",
    "milestone_add": "Milestone added",
    "milestone_complete": "Milestone completed",
    "product_create": "Product created",
    "product_update": "Product changed",
    "rate_item_create": "Rate item created",
    "rate_item_update": "Rate item changed",
    "rate_line_add": "Rate line added",
    "role_create": "Role created",
    "role_update": "Role changed",
    "service_line_add": "Service line added",
    "service_line_end": "Service line ended",
    "tax_category_create": "Tax category created",
    "tax_category_update": "Tax category changed",
    "tax_rate_create": "Tax rate created",
    "tax_rate_new_version": "New tax rate version",
    "time_approval_switched": "Time approval switched",
    "time_entry_approved": "Time entry approved",
    "usage_record": "Usage recorded",
    "work_type_create": "Work type created",
    "work_type_update": "Work type changed",
}


def action_label(action: str) -> str:
    """``batch_run`` → "Batch run"; ``contract_update`` → "Contract changed"."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    words = action.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def object_type_label(object_type: str) -> str:
    """``contracts.contract`` → "Contract"; an unknown type as it is stored."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(model._meta.verbose_name).capitalize()


def object_label(object_type: str, object_id: str, object_repr: str) -> str:
    """"Contract Acme — Gold Remote"; without a recorded name, "Contract 43"."""
    kind = object_type_label(object_type)
    return f"{kind} {object_repr or object_id}"


def field_label(field: str) -> str:
    """``exclusion_set`` → "Exclusion set"."""
    words = field.replace("_", " ")
    return words[:1].upper() + words[1:]
