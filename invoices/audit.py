"""The audit trail, as ``invoices`` first offered it.

``AuditEvent`` and its functions live in ``msp_billing.audit`` (every app may import it);
these names stay here so existing callers keep working. New code imports from
``msp_billing.audit.services`` (writes) and ``msp_billing.audit.selectors`` (reads).
"""
from msp_billing.audit.models import AuditEvent
from msp_billing.audit.selectors import audit_events, audit_events_for
from msp_billing.audit.services import SYSTEM_ACTOR, audit_record, audit_record_many, jsonable, object_type_of

__all__ = ["SYSTEM_ACTOR", "AuditEvent", "audit_events", "audit_events_for", "audit_record", "audit_record_many", "jsonable", "object_type_of"]
