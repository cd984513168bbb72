from django.urls import path

from benchmark import views

app_name = "benchmark"

urlpatterns = [
    path("", views.benchmark_home, name="home"),
    path("settings/", views.benchmark_settings, name="settings"),
    path("cost-rates/", views.cost_rates, name="cost_rates"),
    path("cost-rates/<int:user_id>/", views.cost_rate_edit, name="cost_rate_edit"),
    path("profitability/", views.profitability, name="profitability"),
    path("utilisation/", views.utilisation, name="utilisation"),
]
