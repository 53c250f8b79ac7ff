"""URLs of the customers app, under /customers/. Each area keeps its routes in its own section."""

from django.urls import path

from customers.views import customers as customer_views
from customers.views import duplicates as duplicate_views
from customers.views import imports as import_views
from customers.views import scoring as scoring_views
from customers.views import segments as segment_views

app_name = "customers"

urlpatterns = [
    # --- profiles, list, 360 (views/customers.py) ---
    path("", customer_views.customer_list, name="list"),
    path("new/", customer_views.customer_create, name="create"),
    path("bulk/", customer_views.customer_bulk, name="bulk"),
    path("export.csv", customer_views.customer_export, name="export"),
    path("<uuid:pk>/", customer_views.customer_detail, name="detail"),
    path("<uuid:pk>/edit/", customer_views.customer_edit, name="edit"),
    path("<uuid:pk>/timeline/", customer_views.customer_timeline, name="timeline"),
    path("<uuid:pk>/interactions/", customer_views.interaction_create, name="interaction_create"),
    path("<uuid:pk>/360.json", customer_views.customer_360_json, name="json360"),
    # --- segments (views/segments.py) ---
    path("segments/", segment_views.segment_list, name="segment_list"),
    path("segments/new/", segment_views.segment_create, name="segment_create"),
    path("segments/builder/", segment_views.segment_builder, name="segment_builder"),
    path("segments/preview/", segment_views.segment_preview, name="segment_preview"),
    path("segments/<uuid:pk>/", segment_views.segment_detail, name="segment_detail"),
    path("segments/<uuid:pk>/edit/", segment_views.segment_edit, name="segment_edit"),
    path("segments/<uuid:pk>/refresh/", segment_views.segment_refresh, name="segment_refresh"),
    path("segments/<uuid:pk>/delete/", segment_views.segment_delete, name="segment_delete"),
    path(
        "segments/<uuid:pk>/members/remove/",
        segment_views.segment_remove_members,
        name="segment_remove_members",
    ),
    # --- imports (views/imports.py) ---
    path("imports/", import_views.import_list, name="imports"),
    path("imports/new/", import_views.import_upload, name="import_upload"),
    path("imports/template.csv", import_views.import_template, name="import_template"),
    path("imports/<uuid:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<uuid:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("imports/<uuid:pk>/errors.csv", import_views.import_errors_csv, name="import_errors"),
    # --- duplicates and merge (views/duplicates.py) ---
    path("duplicates/", duplicate_views.duplicate_list, name="duplicates"),
    path("duplicates/merge/<uuid:a>/<uuid:b>/", duplicate_views.duplicate_merge, name="duplicates_merge"),
    path(
        "duplicates/dismiss/<uuid:a>/<uuid:b>/", duplicate_views.duplicate_dismiss, name="duplicates_dismiss"
    ),
    # --- scoring settings (views/scoring.py) ---
    path("scoring/", scoring_views.scoring_settings, name="scoring"),
    path("scoring/rescore/", scoring_views.scoring_rescore, name="scoring_rescore"),
]
