"""Public lead capture forms (no login): /forms/<org-slug>/<form-slug>/."""

from django.urls import path

from marketing.views import public_forms

app_name = "forms"
urlpatterns = [
    path("<slug:org_slug>/<slug:slug>/", public_forms.form_page, name="form"),
]
