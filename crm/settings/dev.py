"""Development settings: DEBUG on, emails to the console, the embedded dev stack when nothing is configured."""

from crm import devstack
from crm.settings import envfile

envfile.load()

# Before base.py reads DATABASE_URL / REDIS_URL: with them unset, start (or find) the embedded PostgreSQL
# and Redis under .devdata/ and point the environment at them. With them set, this does nothing.
devstack.apply_to_environ()

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the finders (no collectstatic needed outside production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
