"""URLs of the platform host (public schema): landing, sign-up, health, operator admin."""
from django.contrib import admin
from django.urls import path

from msp_billing.health import healthz
from msp_billing.tenants import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
