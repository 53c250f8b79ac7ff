"""URLs of the exports area (combined in compliance/urls/__init__.py): staff downloads of a request's export
and the access log."""

from django.urls import path

from compliance.views import access_log, exports

urlpatterns = [
    path("exports/<str:kind>/<uuid:pk>/", exports.export_download, name="export_download"),
    path("access-log/", access_log.access_log, name="access_log"),
]
