"""Settings shared by every environment, read from the environment (12-factor) through django-environ.

Each environment module (dev, test, production) imports this one and changes only what differs.
Every variable read here is documented in `.env.example`.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF

from crm.settings import envfile

BASE_DIR = Path(__file__).resolve().parent.parent.parent

envfile.load()
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "crm.apps.CrmConfig",
    "crm.apps.CrmAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "csp",
    "axes",
    # Domain apps
    "customers.apps.CustomersConfig",
    "sales.apps.SalesConfig",
    "support.apps.SupportConfig",
    "marketing.apps.MarketingConfig",
    "compliance.apps.ComplianceConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "crm.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Opens the transaction that runs the view and renders the response, with the tenant context set
    # inside it (transaction-local, so a pooled connection never carries it to the next request).
    "crm.tenancy.TenantMiddleware",
    "crm.middleware.UserTimezoneMiddleware",
    "crm.middleware.NoStoreForAuthenticatedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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
                "csp.context_processors.nonce",
                "crm.context_processors.shell",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
# DATABASE_URL is the unprivileged application role (subject to row-level security); DATABASE_OWNER_URL is
# the role that owns the schema and runs migrations. With neither set, the dev and test settings start the
# embedded dev stack (crm/devstack.py) and point both at it.
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres:///crm")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_OWNER = env.db_url("DATABASE_OWNER_URL", default=env("DATABASE_URL", default="postgres:///crm"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "crm",
    }
}

# --- Authentication ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "crm.auth.EmailBackend",
]
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600  # invitation and reset links: 3 days
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# OWASP ASVS 2.1: at least 12 characters, up to 128, common passwords rejected, no composition rules.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "crm.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Login throttling: per username and IP together, locked for a cool-off period. The lockout renders the
# login page with the same message whether or not the account exists.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "crm.auth.lockout_response"
# The login form posts the email as "username"; axes must read the same key when it records a failure and
# when it checks the lock (its default, USERNAME_FIELD = "email", recorded every failure under no username,
# so the right password always got through). Normalised like the login itself (case-insensitive).
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "crm.auth.axes_username"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_VERBOSE = False

# Sessions: an idle timeout (each request slides it) and cookies only the server can read.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# --- Security headers --------------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Internationalisation ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files -------------------------------------------------------------------------------------------
# Bootstrap, Bootstrap Icons and htmx come from npm (package.json) at set-up; they are never committed.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/sortablejs", BASE_DIR / "node_modules" / "sortablejs"),
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", BASE_DIR / "node_modules" / "bootstrap-icons" / "font"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / ".devdata" / "media"))
MEDIA_URL = "media/"

# --- Email --------------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="CRM <no-reply@crm.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Marketing email through a provider (django-anymail): EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend,
# the provider's keys in ANYMAIL_SETTINGS (JSON), and the delivery webhooks' shared secret ("user:password").
EMAIL_BACKEND = env("EMAIL_BACKEND", default=EMAIL_CONFIG["EMAIL_BACKEND"])
ANYMAIL = {
    **env.json("ANYMAIL_SETTINGS", default={}),
    "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default=""),
}
# The address people reach the CRM at, for links in emails sent by background tasks (reminders, surveys,
# ticket replies), where there is no request to build an absolute URL from.
CRM_BASE_URL = env("CRM_BASE_URL", default="http://localhost:8000").rstrip("/")
# Where customers' answers to support emails go (the inbound address that feeds `ingest_email`).
SUPPORT_REPLY_TO = env("SUPPORT_REPLY_TO", default="")
# PII encryption at rest (crm/encryption.py, docs/security.md): Fernet keys, the first encrypts and all
# decrypt; and the key of the phone number's keyed hash. Unset (dev, test): both derived from SECRET_KEY.
CRM_ENCRYPTION_KEYS = env.list("CRM_ENCRYPTION_KEYS", default=[])
CRM_BLIND_INDEX_KEY = env("CRM_BLIND_INDEX_KEY", default="")

# --- Celery -------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task not acknowledged within the visibility timeout is handed to another worker, so every time limit
# stays well below it: hard limit 30 min < visibility timeout 1 h.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Application ------------------------------------------------------------------------------------------
# Months of audit-log partitions created ahead of time by the beat task (and by the migration).
CRM_PARTITION_MONTHS_AHEAD = env.int("CRM_PARTITION_MONTHS_AHEAD", default=3)
# Trust X-Forwarded-For for the client IP recorded in the audit log only behind a known proxy.
CRM_TRUST_X_FORWARDED_FOR = env.bool("CRM_TRUST_X_FORWARDED_FOR", default=False)
# CSV imports uploaded in the web app: largest file and most data rows (the import commands take more).
CRM_IMPORT_MAX_BYTES = env.int("CRM_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
CRM_IMPORT_MAX_ROWS = env.int("CRM_IMPORT_MAX_ROWS", default=100_000)
# Marketing email: most emails per second per organization (all its campaigns and sequences together, a
# token bucket in Redis), and how many emails one chunk task claims and sends (marketing/sending.py).
MARKETING_SEND_RATE = env.float("MARKETING_SEND_RATE", default=20.0)
MARKETING_SEND_CHUNK = env.int("MARKETING_SEND_CHUNK", default=100)
# Customers per slice of a campaign's recipient materialization: each slice is a task of its own, so the
# workers write a large audience in parallel (marketing/sending.py).
MARKETING_MATERIALIZE_SLICE = env.int("MARKETING_MATERIALIZE_SLICE", default=50_000)
# Privacy: days a GDPR / CCPA export's signed download link works (compliance/exporting.py).
PRIVACY_EXPORT_LINK_DAYS = env.int("PRIVACY_EXPORT_LINK_DAYS", default=7)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
SILENCED_SYSTEM_CHECKS = [
    "auth.W004"
]  # email is unique case-insensitively: users_email_ci_key on lower(email)
