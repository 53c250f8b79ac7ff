"""URLs of the sends area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import sends as views

urlpatterns: list = [
    path("campaigns/<uuid:pk>/send/", views.campaign_send_panel, name="campaign_send_panel"),
    path("campaigns/<uuid:pk>/send/launch/", views.campaign_send_launch, name="campaign_send_launch"),
    path("campaigns/<uuid:pk>/send/pause/", views.campaign_send_pause, name="campaign_send_pause"),
    path("campaigns/<uuid:pk>/send/resume/", views.campaign_send_resume, name="campaign_send_resume"),
    path("campaigns/<uuid:pk>/recipients/", views.campaign_recipients, name="campaign_recipients"),
]
