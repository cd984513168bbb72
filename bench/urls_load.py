"""The tenant URLs and a bare view: the same middleware (tenant, session, sign-in), no query, no template."""
import uuid

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.urls import path

from msp_billing.accounts.access import open_to_all
from msp_billing.urls_tenant import urlpatterns as tenant_urlpatterns


@open_to_all
def bare(request):
    return HttpResponse("ok", content_type="text/plain")


@open_to_all
@csrf_exempt
def insert(request):
    """The API benchmark's baseline: one row inserted (the API's own idempotency table), nothing else."""
    from api.models import ApiToken, IdempotentRequest

    token = ApiToken.objects.only("pk").first()
    IdempotentRequest.objects.create(token=token, key=uuid.uuid4().hex, fingerprint="bench", status=200)
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare), path("bench/insert/", insert), *tenant_urlpatterns]
