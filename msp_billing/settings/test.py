"""Test settings: real PostgreSQL and Redis (embedded unless URLs are given)."""
from msp_billing.embedded import ensure_embedded_services
from msp_billing.settings.base import *  # noqa: F401,F403
from msp_billing.settings.base import BASE_DIR, STATIC_ROOT, configure_services, env

DEBUG = False
SECRET_KEY = "test-only-not-secret"
ALLOWED_HOSTS = ["localhost", ".localhost", "127.0.0.1", "testserver"]
PUBLIC_URL_SCHEME = "http"
PUBLIC_URL_PORT = env("PUBLIC_URL_PORT", default="")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = BASE_DIR / "var" / "test-media"
WHITENOISE_USE_FINDERS = True  # no collectstatic needed for the test server

ensure_embedded_services()
# Tests use their own Redis database so a running `make run` keeps its queue.
_services = configure_services(env("DATABASE_URL"), env("REDIS_URL"), env.int("TEST_REDIS_DB", default=13))
DATABASES = _services["DATABASES"]
# Parallel test runs on one server each name their own database.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DB_NAME", default=f"test_{DATABASES['default']['NAME']}")}
CACHES = _services["CACHES"]
CELERY_BROKER_URL = _services["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _services["CELERY_RESULT_BACKEND"]

# Workers the tests start do not render every tenant's missing PDFs on start unless a test asks.
INVOICE_PDF_SWEEP_ON_WORKER_START = env.bool("INVOICE_PDF_SWEEP_ON_WORKER_START", default=False)

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it to exist
