"""Public (no-login) privacy pages under /privacy-request/: a data subject's request form, its identity
verification, and the signed, expiring download of an export."""

from compliance.urls_public import downloads, requests

app_name = "privacy_public"
urlpatterns = [
    *requests.urlpatterns,
    *downloads.urlpatterns,
]
