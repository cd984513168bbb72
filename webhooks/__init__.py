"""Webhooks: an MSP's subscriptions to events (invoice issued, paid, voided, exported; batch run;
sync failed), delivered signed by Celery with retries, and the delivery log. Outermost app: it
listens to the inner apps' hooks and is imported by none of them (docs/webhooks.md)."""
