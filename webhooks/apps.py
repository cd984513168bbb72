from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # The inner apps announce what happened through their hooks; webhooks listens.
        from billing.hooks import register_batch_run_listener
        from integrations.hooks import register_sync_failure_listener
        from invoices.hooks import register_invoice_listener
        from webhooks import events

        register_invoice_listener(events.on_invoice_changed)
        register_batch_run_listener(events.on_batch_run)
        register_sync_failure_listener(events.on_sync_failed)
