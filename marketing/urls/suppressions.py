"""URLs of the suppression list (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import suppressions as views

urlpatterns = [
    path("suppressions/", views.suppression_list, name="suppression_list"),
    path("suppressions/add/", views.suppression_add, name="suppression_add"),
    path("suppressions/<uuid:pk>/remove/", views.suppression_remove, name="suppression_remove"),
]
