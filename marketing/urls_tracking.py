"""Public tracking URLs (no login, signed tokens): open pixel, click redirect, one-click unsubscribe.
Mounted at /m/ (crm/urls.py) under the namespace "tracking"; marketing/tracking.py builds the links."""

from django.urls import path

from marketing.views import tracking

app_name = "tracking"
urlpatterns = [
    path("o/<str:token>/", tracking.open_pixel, name="open"),
    path("c/<str:token>/", tracking.click, name="click"),
    path("u/<str:token>/", tracking.unsubscribe, name="unsubscribe"),
]
