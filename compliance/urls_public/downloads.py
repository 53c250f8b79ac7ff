"""Public (no-login) URLs: downloads (combined in compliance/urls_public/__init__.py). The signed token is
the credential (compliance/exporting.py)."""

from django.urls import path

from compliance.views import exports

urlpatterns = [
    path("download/<str:token>/", exports.export_download_public, name="download"),
]
