import zoneinfo

from django.utils import timezone


class TenantTimezoneMiddleware:
    """Show dates and times in the MSP's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public:
            timezone.activate(zoneinfo.ZoneInfo(tenant.timezone))
        else:
            timezone.deactivate()
        return self.get_response(request)
