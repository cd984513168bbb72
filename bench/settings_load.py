"""Production settings plus one bare view (``/bench/bare/``): the load run's baseline on the same server."""
from msp_billing.settings.production import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls_load"
