from django.urls import path

from invoices import views

app_name = "invoices"
urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("new/", views.invoice_create, name="create"),
    path("aging/", views.aging, name="aging"),
    path("outstanding/", views.outstanding, name="outstanding"),
    path("settings/", views.invoice_settings, name="settings"),
    path("<int:invoice_id>/", views.invoice_detail, name="detail"),
    path("<int:invoice_id>/edit/", views.invoice_edit, name="edit"),
    path("<int:invoice_id>/issue/", views.invoice_issue, name="issue"),
    path("<int:invoice_id>/void/", views.invoice_void, name="void"),
    path("<int:invoice_id>/delete/", views.invoice_delete, name="delete"),
    path("<int:invoice_id>/credit-note/", views.credit_note_create, name="credit_note"),
    path("<int:invoice_id>/payments/new/", views.payment_create, name="payment"),
]
