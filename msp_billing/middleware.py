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


class PermissionsPolicyMiddleware:
    """Turn off browser features no page uses (``PERMISSIONS_POLICY``)."""

    def __init__(self, get_response):
        from django.conf import settings

        self.policy = getattr(settings, "PERMISSIONS_POLICY", "")
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = self.policy
        return response
