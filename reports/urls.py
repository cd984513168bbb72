from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.index, name="index"),
    path("unbilled/", views.unbilled, name="unbilled"),
    path("revenue/", views.revenue, name="revenue"),
    path("blocks/", views.blocks, name="blocks"),
    path("renewals/", views.renewals, name="renewals"),
]
