"""Production: every secret and service from the environment, HTTPS everywhere."""
from msp_billing.settings.base import *  # noqa: F401,F403
from msp_billing.settings.base import configure_services, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
_services = configure_services(env("DATABASE_URL"), env("REDIS_URL"), env.int("REDIS_DB", default=0))
DATABASES = _services["DATABASES"]
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
CACHES = _services["CACHES"]
CELERY_BROKER_URL = _services["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _services["CELERY_RESULT_BACKEND"]

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# /healthz is probed over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", default=[f"https://*.{env('TENANT_BASE_DOMAIN', default='localhost')}"]
)
