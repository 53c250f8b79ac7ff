"""URLs of the abtests area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import abtests

urlpatterns: list = [
    path("campaigns/<uuid:pk>/ab-test/", abtests.campaign_ab_edit, name="campaign_ab_edit"),
    path("campaigns/<uuid:pk>/ab-test/panel/", abtests.campaign_ab_panel, name="campaign_ab_panel"),
    path("campaigns/<uuid:pk>/ab-test/decide/", abtests.campaign_ab_decide, name="campaign_ab_decide"),
    path(
        "campaigns/<uuid:pk>/ab-test/variants/",
        abtests.campaign_ab_variant_add,
        name="campaign_ab_variant_add",
    ),
    path(
        "campaigns/<uuid:pk>/ab-test/variants/<uuid:variant_pk>/",
        abtests.campaign_ab_variant_edit,
        name="campaign_ab_variant_edit",
    ),
    path(
        "campaigns/<uuid:pk>/ab-test/variants/<uuid:variant_pk>/delete/",
        abtests.campaign_ab_variant_delete,
        name="campaign_ab_variant_delete",
    ),
]
