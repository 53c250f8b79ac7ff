"""URLs of the requests area (combined in compliance/urls/__init__.py)."""

from django.urls import path

from compliance.views import requests as views

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/<str:kind>/<uuid:pk>/", views.request_detail, name="request_detail"),
    path("requests/<str:kind>/<uuid:pk>/progress/", views.request_progress, name="request_progress"),
    path("requests/<str:kind>/<uuid:pk>/send-code/", views.request_send_code, name="request_send_code"),
    path("requests/<str:kind>/<uuid:pk>/verify-code/", views.request_verify_code, name="request_verify_code"),
    path(
        "requests/<str:kind>/<uuid:pk>/mark-verified/",
        views.request_mark_verified,
        name="request_mark_verified",
    ),
    path("requests/<str:kind>/<uuid:pk>/extend/", views.request_extend, name="request_extend"),
    path("requests/<str:kind>/<uuid:pk>/reject/", views.request_reject, name="request_reject"),
    path("requests/<str:kind>/<uuid:pk>/assign/", views.request_assign, name="request_assign"),
    path(
        "requests/<str:kind>/<uuid:pk>/link-customer/",
        views.request_link_customer,
        name="request_link_customer",
    ),
    path("requests/<str:kind>/<uuid:pk>/process/", views.request_process, name="request_process"),
]
