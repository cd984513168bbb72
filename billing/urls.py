from django.urls import path

from billing import import_views, views

app_name = "billing"
urlpatterns = [
    path("", views.billing_home, name="home"),
    path("reports/", views.reports, name="reports"),
    path("import/time/", import_views.time_csv_upload, name="import_time_csv"),
    path("import/time/<str:token>/", import_views.time_csv_preview_view, name="import_time_csv_preview"),
]
