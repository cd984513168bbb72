from django.urls import path

from contracts import views

app_name = "contracts"
urlpatterns = [
    path("contracts/", views.contract_list, name="list"),
    path("customers/", views.customer_list, name="customer_list"),
]
