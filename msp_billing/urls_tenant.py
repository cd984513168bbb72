"""URLs of an MSP's own host. Every view declares who may open it (accounts.access).

The domain and outer apps are mounted by the dotted path of their URLconf, as their
INSTALLED_APPS entries name them: this module is configuration and imports none of them.
"""
from django.urls import include, path

from msp_billing import views
from msp_billing.accounts import views as account_views
from msp_billing.health import healthz

accounts_patterns = (
    [
        path("login/", account_views.login, name="login"),
        path("logout/", account_views.logout, name="logout"),
        path("password-reset/", account_views.password_reset, name="password_reset"),
        path("password-reset/sent/", account_views.password_reset_done, name="password_reset_done"),
        path("reset/<uidb64>/<token>/", account_views.password_reset_confirm, name="password_reset_confirm"),
        path("reset/done/", account_views.password_reset_complete, name="password_reset_complete"),
    ],
    "accounts",
)
settings_patterns = (
    [
        path("", account_views.settings_home, name="home"),
        path("", include("tickets.settings_urls")),
        path("webhooks/", include("webhooks.settings_urls")),
        path("users/", account_views.user_list, name="users"),
        path("users/<int:user_id>/", account_views.user_edit, name="user_edit"),
        path("", include("api.settings_urls")),
    ],
    "settings",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("billing.dashboard_urls")),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include(accounts_patterns)),
    path("settings/", include(settings_patterns)),
    # The import pages (onboarding/) share the billing pages' prefix and namespace.
    path("billing/", include(([path("", include("billing.urls")), path("", include("onboarding.urls"))], "billing"))),
    path("tickets/", include("tickets.urls")),
    path("", include("contracts.urls")),
    path("invoices/", include("invoices.urls")),
    path("integrations/", include("integrations.urls")),
    path("reports/", include("reports.urls")),
    path("benchmark/", include("benchmark.urls")),
    path("leaks/", include("leaks.urls")),
    path("api/v1/", include("api.urls")),
]
