from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"

    def ready(self) -> None:
        from invoices.hooks import register_invoice_listener
        from invoices.delivery import register_email_job
        from invoices.mail import register_email_delivery
        from invoices.tasks import queue_email_delivery, queue_email_job, queue_pdf_render

        # Issued, edited and voided invoices and new credit notes get their PDF rendered in the background.
        register_invoice_listener(queue_pdf_render)
        # A recorded e-mail is delivered by a worker.
        register_email_delivery(queue_email_delivery)
        register_email_job(queue_email_job)
