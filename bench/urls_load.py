"""The tenant URLs and a bare view: the same middleware (tenant, session, sign-in), no query, no template."""
from django.http import HttpResponse
from django.urls import path

from msp_billing.accounts.access import open_to_all
from msp_billing.urls_tenant import urlpatterns as tenant_urlpatterns


@open_to_all
def bare(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare), *tenant_urlpatterns]
