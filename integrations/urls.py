"""Pages of integrations/: include with ``path("integrations/", include("integrations.urls"))``."""
from django.urls import path

from integrations import views

app_name = "integrations"
urlpatterns = [
    path("accounting/", views.accounting, name="accounting"),
    path("accounting/<slug:system>/setup/", views.setup, name="setup"),
    path("accounting/<slug:system>/connect/", views.connect, name="connect"),
    path("accounting/<slug:system>/callback/", views.callback, name="callback"),
    path("accounting/<slug:system>/disconnect/", views.disconnect, name="disconnect"),
    path("accounting/sync/<slug:step>/", views.wizard_step, name="wizard"),
    path("accounting/payments/pull/", views.payments_pull, name="payments_pull"),
    path("accounting/failures/<int:log_id>/retry/", views.failure_retry, name="failure_retry"),
    path("accounting/failures/<int:log_id>/resolve/", views.failure_resolve, name="failure_resolve"),
    path("export/", views.export, name="export"),
    path("export/selected/", views.export_confirm, name="export_confirm"),
    path("export/runs/<int:run_id>/", views.run_detail, name="run"),
    path("export/file/", views.export_file, name="export_file"),
    path("invoices/<int:invoice_id>/file/<str:fmt>/", views.invoice_export_file, name="invoice_file"),
]
