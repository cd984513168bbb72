"""Developer settings: embedded PostgreSQL and Redis unless URLs are given."""
from msp_billing.embedded import ensure_embedded_services
from msp_billing.settings.base import *  # noqa: F401,F403
from msp_billing.settings.base import STATIC_ROOT, configure_services, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-only-not-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", ".localhost", "127.0.0.1"])
PUBLIC_URL_SCHEME = env("PUBLIC_URL_SCHEME", default="http")
PUBLIC_URL_PORT = env("PUBLIC_URL_PORT", default="8000")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

ensure_embedded_services()
_services = configure_services(env("DATABASE_URL"), env("REDIS_URL"), env.int("REDIS_DB", default=0))
DATABASES = _services["DATABASES"]
CACHES = _services["CACHES"]
CELERY_BROKER_URL = _services["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _services["CELERY_RESULT_BACKEND"]

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it to exist
