"""Settings → Webhooks (``settings:webhooks``…), mounted by ``msp_billing/urls_tenant.py`` under /settings/webhooks/."""
from django.urls import path

from webhooks import views

urlpatterns = [
    path("", views.subscription_list, name="webhooks"),
    path("new/", views.subscription_new, name="webhook_new"),
    path("<int:subscription_id>/", views.subscription_detail, name="webhook_detail"),
    path("<int:subscription_id>/secret/", views.subscription_secret_rotate, name="webhook_secret_rotate"),
    path("<int:subscription_id>/delete/", views.subscription_delete, name="webhook_delete"),
    path("<int:subscription_id>/deliveries/<int:delivery_id>/", views.delivery_detail, name="webhook_delivery"),
    path("<int:subscription_id>/deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver,
         name="webhook_redeliver"),
]
