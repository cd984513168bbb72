"""The tickets' page among the settings (``settings:time_approval``), mounted by ``msp_billing/urls_tenant.py``."""
from django.urls import path

from tickets import settings_views

urlpatterns = [
    path("time-approval/", settings_views.time_approval, name="time_approval"),
]
