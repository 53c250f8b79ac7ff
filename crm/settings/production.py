"""Production settings: fail fast without the required configuration, then harden everything.

`manage.py check --deploy --fail-level WARNING` passes with these settings (`make check-deploy`).
"""

import os

from django.core.exceptions import ImproperlyConfigured

from crm.settings import envfile

envfile.load()

_REQUIRED = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CRM_ENCRYPTION_KEYS",
    "CRM_BLIND_INDEX_KEY",
)
_missing = [name for name in _REQUIRED if not os.environ.get(name)]
if _missing:
    raise ImproperlyConfigured(
        "Production settings need these environment variables: " + ", ".join(_missing) + " (see .env.example)"
    )

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

DEBUG = False

# HTTPS everywhere. Behind a TLS-terminating proxy, set DJANGO_SECURE_PROXY_SSL_HEADER=true so Django trusts
# its X-Forwarded-Proto header; set DJANGO_SECURE_SSL_REDIRECT=false only if the proxy redirects for us.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)  # noqa: F405
