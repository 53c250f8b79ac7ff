"""URLs of the settings area (combined in compliance/urls/__init__.py)."""

from django.urls import path

from compliance.views import settings

urlpatterns = [
    path("settings/", settings.privacy_settings, name="settings"),
]
