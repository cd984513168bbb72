"""The tenant URLs plus integrations/, until msp_billing/urls_tenant.py includes it."""
from django.urls import include, path

from msp_billing.urls_tenant import urlpatterns as tenant_patterns

_included = any(getattr(pattern, "namespace", None) == "integrations" for pattern in tenant_patterns)
urlpatterns = list(tenant_patterns) + ([] if _included else [path("integrations/", include("integrations.urls"))])
