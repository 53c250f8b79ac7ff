"""WSGI entry point for gunicorn: `gunicorn crm.wsgi:application` (production settings by default)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")

application = get_wsgi_application()
