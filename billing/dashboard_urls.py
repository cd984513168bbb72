"""The dashboard (``dashboard``, no namespace), mounted at the site's top by ``msp_billing/urls_tenant.py``."""
from django.urls import path

from billing import dashboard_views

urlpatterns = [
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/widgets/", dashboard_views.widget_save, name="dashboard_widget_save"),
    path("dashboard/widgets/<int:widget_id>/delete/", dashboard_views.widget_delete, name="dashboard_widget_delete"),
]
