"""Settings → API tokens (``settings:api_tokens``), mounted by ``msp_billing/urls_tenant.py``."""
from django.urls import path

from api import settings_views

urlpatterns = [
    path("api-tokens/", settings_views.api_tokens, name="api_tokens"),
    path("api-tokens/<int:token_id>/revoke/", settings_views.api_token_revoke, name="api_token_revoke"),
]
