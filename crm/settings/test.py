"""Test settings: the real PostgreSQL (as the unprivileged app role) and Redis, fast password hashing."""

from crm import devstack
from crm.settings import envfile

envfile.load()

devstack.apply_to_environ()

from .base import *  # noqa: E402,F403
from .base import CACHES, env  # noqa: E402

DEBUG = False
SECRET_KEY = "test-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Hashing strength is not under test; MD5 keeps factories fast. Never outside tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A separate Redis database and key prefix so a test run never touches dev data.
CACHES["default"]["KEY_PREFIX"] = "crm-test"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TEST_QUEUE", default="crm-test")
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Serve static files straight from the finders (no collectstatic needed outside production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
