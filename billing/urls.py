"""The billing pages, in the ``billing`` namespace with the import pages (see ``msp_billing/urls_tenant.py``)."""
from django.urls import path

from billing import approval_views, views

urlpatterns = [
    path("", views.billing_home, name="home"),
    path("batches/new/", views.batch_new, name="batch_new"),
    path("batches/preview/", views.batch_preview, name="batch_preview"),
    path("batches/new/contracts/<int:contract_id>/items/", views.batch_contract_items, name="batch_contract_items"),
    path("batches/<int:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:batch_id>/generate/", views.batch_generate, name="batch_generate"),
    path("batches/<int:batch_id>/delete/", views.batch_delete, name="batch_delete"),
    path("batches/<int:batch_id>/invoices/<int:invoice_id>/delete/", views.batch_invoice_delete, name="batch_invoice_delete"),
    path("approval/", approval_views.approval_list, name="approval"),
    path("approval/<int:entry_id>/", approval_views.approval_entry, name="approval_entry"),
    path("reports/", views.reports, name="reports"),
    path("reports/reconciliation/", views.reconciliation, name="reconciliation"),
    path("reports/audit/", views.audit_report, name="audit"),
    path("schedule/", views.schedule_settings, name="schedule"),
]
