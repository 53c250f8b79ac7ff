"""Public (no-login) URLs: a data subject's request form and its identity verification (combined in
compliance/urls_public/__init__.py). The request id in the verify URLs is a GDPR or a CCPA request's."""

from django.urls import path

from compliance.views import public

urlpatterns = [
    path("<slug:org_slug>/", public.form_page, name="form"),
    path("<slug:org_slug>/verify/<uuid:pk>/", public.verify, name="verify"),
    path("<slug:org_slug>/verify/<uuid:pk>/new-code/", public.resend, name="verify_resend"),
]
