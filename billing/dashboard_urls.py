"""The dashboard (``dashboard``, no namespace), mounted at the site's top by ``msp_billing/urls_tenant.py``."""
from django.urls import path

from billing import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
]
