"""URLs of the reports area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import reports

urlpatterns: list = [
    path("reports/campaigns/", reports.campaign_comparison, name="campaign_comparison"),
    path(
        "reports/campaigns/export.csv", reports.campaign_comparison_export, name="campaign_comparison_export"
    ),
    path("campaigns/<uuid:pk>/funnel/", reports.campaign_funnel_panel, name="campaign_funnel_panel"),
]
