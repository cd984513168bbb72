from django.urls import path

from tickets import views

app_name = "tickets"
urlpatterns = [path("", views.ticket_list, name="list")]
