"""URLs of the sequences area (combined in marketing/urls/__init__.py)."""

from django.urls import path

from marketing.views import sequences as views

urlpatterns: list = [
    path("sequences/", views.sequence_list, name="sequence_list"),
    path("sequences/new/", views.sequence_create, name="sequence_create"),
    path("sequences/<uuid:pk>/", views.sequence_detail, name="sequence_detail"),
    path("sequences/<uuid:pk>/edit/", views.sequence_edit, name="sequence_edit"),
    path("sequences/<uuid:pk>/status/", views.sequence_status, name="sequence_status"),
    path("sequences/<uuid:pk>/delete/", views.sequence_delete, name="sequence_delete"),
    path("sequences/<uuid:pk>/steps/new/", views.step_create, name="sequence_step_create"),
    path("sequences/<uuid:pk>/enroll/", views.sequence_enroll, name="sequence_enroll"),
    path("sequences/steps/<uuid:pk>/edit/", views.step_edit, name="sequence_step_edit"),
    path("sequences/steps/<uuid:pk>/move/", views.step_move, name="sequence_step_move"),
    path("sequences/steps/<uuid:pk>/delete/", views.step_delete, name="sequence_step_delete"),
    path("sequences/enrollments/<uuid:pk>/", views.enrollment_detail, name="enrollment_detail"),
    path("sequences/enrollments/<uuid:pk>/remove/", views.enrollment_remove, name="enrollment_remove"),
]
