"""URLs of the templates area (combined in marketing/urls/__init__.py): email templates and their editor."""

from django.urls import path

from marketing.views import templates as views

urlpatterns = [
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_create, name="template_create"),
    path("templates/preview/", views.template_preview, name="template_preview"),
    path("templates/send-test/", views.template_send_test, name="template_send_test"),
    path("templates/plain-text/", views.template_text_from_html, name="template_text_from_html"),
    path("templates/customers/", views.template_customer_options, name="template_customer_options"),
    path("templates/<uuid:pk>/", views.template_edit, name="template_edit"),
    path("templates/<uuid:pk>/duplicate/", views.template_duplicate, name="template_duplicate"),
    path("templates/<uuid:pk>/archive/", views.template_archive, name="template_archive"),
    path("templates/<uuid:pk>/restore/", views.template_restore, name="template_restore"),
]
