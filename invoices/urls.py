from django.urls import path

from invoices import bulk_views, document_views, views

app_name = "invoices"
urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("new/", views.invoice_create, name="create"),
    path("csv/", bulk_views.invoice_list_csv, name="list_csv"),
    path("selected/payments/", bulk_views.bulk_payment, name="bulk_payment"),
    path("selected/pdfs.zip", bulk_views.pdf_zip, name="pdf_zip"),
    path("aging/", views.aging, name="aging"),
    path("outstanding/", views.outstanding, name="outstanding"),
    path("settings/", views.invoice_settings, name="settings"),
    path("branding/", document_views.invoice_branding, name="branding"),
    path("pdf-progress/", document_views.pdf_progress, name="pdf_progress"),
    path("email/", document_views.email_preview, name="email_preview"),
    path("email/template/", document_views.email_template, name="email_template"),
    path("email/jobs/<int:job_id>/", document_views.email_job_progress, name="email_job_progress"),
    path("<int:invoice_id>/", views.invoice_detail, name="detail"),
    path("<int:invoice_id>/edit/", views.invoice_edit, name="edit"),
    path("<int:invoice_id>/issue/", views.invoice_issue, name="issue"),
    path("<int:invoice_id>/void/", views.invoice_void, name="void"),
    path("<int:invoice_id>/delete/", views.invoice_delete, name="delete"),
    path("<int:invoice_id>/credit-note/", views.credit_note_create, name="credit_note"),
    path("<int:invoice_id>/payments/new/", views.payment_create, name="payment"),
    path("<int:invoice_id>/pdf/", document_views.invoice_pdf, name="pdf"),
    path("<int:invoice_id>/print/", document_views.invoice_print, name="print"),
    path("<int:invoice_id>/email/", document_views.invoice_email, name="email"),
]
