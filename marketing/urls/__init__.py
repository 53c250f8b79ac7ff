"""URLs of the marketing area, under /marketing/. Each area keeps its own list in this package."""

from marketing.urls import abtests, campaigns, forms, reports, sends, sequences, suppressions, templates

app_name = "marketing"
urlpatterns = [
    *campaigns.urlpatterns,
    *templates.urlpatterns,
    *sends.urlpatterns,
    *suppressions.urlpatterns,
    *abtests.urlpatterns,
    *sequences.urlpatterns,
    *forms.urlpatterns,
    *reports.urlpatterns,
]
