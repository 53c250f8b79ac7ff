"""Development settings: DEBUG on, emails written to files under .devdata/mail/, the embedded dev stack when
nothing is configured."""

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
# Email is never sent out in development: each message is written as a file under .devdata/mail/ (one file
# per connection: a campaign chunk, a reminder), where a developer can read it.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = BASE_DIR / ".devdata" / "mail"  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the finders (no collectstatic needed outside production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
