"""URLs of the campaigns area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import campaigns as views

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/<uuid:pk>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<uuid:pk>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<uuid:pk>/status/", views.campaign_set_status, name="campaign_set_status"),
    path("campaigns/<uuid:pk>/delete/", views.campaign_delete, name="campaign_delete"),
    path("campaigns/<uuid:pk>/actuals/", views.campaign_actuals, name="campaign_actuals"),
    path("campaigns/<uuid:pk>/costs/", views.campaign_cost_add, name="campaign_cost_add"),
    path(
        "campaigns/<uuid:pk>/costs/<uuid:cost_pk>/delete/",
        views.campaign_cost_delete,
        name="campaign_cost_delete",
    ),
]
