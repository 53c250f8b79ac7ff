"""URLs of the privacy area, under /privacy/. Each area keeps its own list in this package."""

from compliance.urls import consent, exports, requests, settings

app_name = "compliance"
urlpatterns = [
    *requests.urlpatterns,
    *exports.urlpatterns,
    *consent.urlpatterns,
    *settings.urlpatterns,
]
