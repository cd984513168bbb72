from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from django.urls import reverse

        from billing.models import BatchInvoice, BillingBatch
        from invoices.delivery import register_invoice_set

        def batch_invoice_ids(batch_id: int) -> list[int] | None:
            if not BillingBatch.objects.filter(pk=batch_id).exists():
                return None
            return list(BatchInvoice.objects.filter(batch_id=batch_id).values_list("invoice_id", flat=True))

        # E-mail invoices from a batch page: invoices:email_preview?batch=<id>
        register_invoice_set("batch", batch_invoice_ids, back_url=lambda batch_id: reverse("billing:batch_detail", args=[batch_id]))
