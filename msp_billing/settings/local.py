"""Settings of `make run`: one machine, embedded PostgreSQL and Redis unless URLs are given.

What a restart must keep is kept under ``var/`` (``MSP_VAR_DIR``): the database (and with
it the sessions, stored in the database), and the secret key that signs the session
cookies, generated on the first start. Errors show the styled 404 and 500 pages; Django's
debug page only when asked for (``DEBUG=1`` or ``DJANGO_DEBUG=1``).
"""
from msp_billing.embedded import VAR_DIR, ensure_embedded_services, local_secret_key
from msp_billing.settings.base import *  # noqa: F401,F403
from msp_billing.settings.base import STATIC_ROOT, configure_services, env

DEBUG = env.bool("DEBUG", default=env.bool("DJANGO_DEBUG", default=False))
# On this machine the demo MSP, with its known passwords, may be seeded whatever DEBUG says.
LOCAL_MACHINE = True
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or local_secret_key(VAR_DIR)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", ".localhost", "127.0.0.1"])
PUBLIC_URL_SCHEME = env("PUBLIC_URL_SCHEME", default="http")
PUBLIC_URL_PORT = env("PUBLIC_URL_PORT", default="8000")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Sessions in the database (Django's default engine), which lives under var/ too.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Static files straight from the source folders, without collectstatic, DEBUG or not.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

ensure_embedded_services()
_services = configure_services(env("DATABASE_URL"), env("REDIS_URL"), env.int("REDIS_DB", default=0))
DATABASES = _services["DATABASES"]
CACHES = _services["CACHES"]
CELERY_BROKER_URL = _services["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _services["CELERY_RESULT_BACKEND"]

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it to exist
