"""Beat loads the exchange rates once a day from the configured address or file."""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)


@shared_task
def exchange_rates_load() -> str:
    """Load the configured rates; nothing configured or a refused document is logged, not raised."""
    from msp_billing.fx.rates import rates_load

    if not (settings.EXCHANGE_RATES_URL or settings.EXCHANGE_RATES_FILE):
        return "no exchange-rate source configured"
    try:
        document = rates_load()
    except (ValidationError, OSError) as error:
        logger.warning("exchange rates not loaded: %s", error)
        return f"not loaded: {error}"
    return f"{len(document.rates)} rates of {document.date}"
