"""The Leaks pages, mounted at /leaks/ by ``msp_billing/urls_tenant.py``."""
from django.urls import path

from leaks import views

app_name = "leaks"
urlpatterns = [
    path("", views.leak_list, name="list"),
    path("card/", views.leak_card, name="card"),
    path("fix/", views.leak_fix_view, name="fix"),
    path("dismiss/", views.leak_dismiss_view, name="dismiss"),
    path("what-if/<int:contract_id>/", views.contract_what_if, name="what_if"),
]
