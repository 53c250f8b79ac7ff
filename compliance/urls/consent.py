"""URLs of the consent area (combined in compliance/urls/__init__.py)."""

from django.urls import path

from compliance.views import consent

urlpatterns = [
    path("customers/<uuid:pk>/consent/", consent.consent_record_add, name="consent_record_add"),
]
