"""The import pages. They are served under ``billing/`` in the ``billing`` namespace
(``billing:import_time_csv``), next to the billing pages: see ``msp_billing/urls_tenant.py``."""
from django.urls import path

from onboarding import views

urlpatterns = [
    path("import/time/", views.time_csv_upload, name="import_time_csv"),
    path("import/time/<str:token>/", views.time_csv_preview_view, name="import_time_csv_preview"),
]
