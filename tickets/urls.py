from django.urls import path

from tickets import views

app_name = "tickets"
urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("new/", views.ticket_create, name="create"),
    path("<int:ticket_id>/", views.ticket_detail, name="detail"),
    path("<int:ticket_id>/time/", views.time_entry_create, name="log_time"),
    path("<int:ticket_id>/time/preview/", views.route_preview, name="route_preview"),
    path("<int:ticket_id>/status/", views.ticket_status, name="status"),
    path("<int:ticket_id>/timer/start/", views.timer_start, name="timer_start"),
    path("<int:ticket_id>/timer/stop/", views.timer_stop, name="timer_stop"),
    path("<int:ticket_id>/charges/", views.charge_create, name="add_charge"),
    path("time/<int:entry_id>/", views.time_entry_detail, name="time_entry"),
    path("time/<int:entry_id>/delete/", views.time_entry_delete, name="time_entry_delete"),
    path("my-time/", views.my_time, name="my_time"),
    path("unrouted/", views.unrouted, name="unrouted"),
    path("unrouted/recalculate/", views.recalculate_unbilled, name="recalculate"),
    path("technician-roles/", views.technician_roles, name="technician_roles"),
]
