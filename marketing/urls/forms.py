"""URLs of the forms area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import forms

urlpatterns = [
    path("forms/", forms.form_list, name="form_list"),
    path("forms/new/", forms.form_create, name="form_create"),
    path("forms/<uuid:pk>/", forms.form_detail, name="form_detail"),
    path("forms/<uuid:pk>/edit/", forms.form_edit, name="form_edit"),
    path("forms/<uuid:pk>/active/", forms.form_set_active, name="form_set_active"),
]
