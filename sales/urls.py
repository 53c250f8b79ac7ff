"""URLs of the sales app, under /sales/. Each area keeps its routes in its own commented section."""

from django.urls import path

# The views modules of every area (ruff keeps them sorted; the sections are in urlpatterns below).
from sales.views import activities, orders, products, quotes
from sales.views import dashboard as dashboard_views
from sales.views import forecast as forecast_views
from sales.views import opportunities as opportunity_views
from sales.views import pipelines as pipeline_views

app_name = "sales"

urlpatterns = [
    # --- pipelines, board, list, opportunity pages, sales settings (views/opportunities.py, views/pipelines.py) ---
    path("", opportunity_views.board, name="board"),
    path("opportunities/", opportunity_views.opportunity_list, name="opportunity_list"),
    path("opportunities/export.csv", opportunity_views.opportunity_export, name="opportunity_export"),
    path("opportunities/new/", opportunity_views.opportunity_create, name="opportunity_create"),
    path("opportunities/customers/", opportunity_views.customer_options, name="opportunity_customer_options"),
    path("opportunities/<uuid:pk>/", opportunity_views.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<uuid:pk>/edit/", opportunity_views.opportunity_edit, name="opportunity_edit"),
    path("opportunities/<uuid:pk>/move/", opportunity_views.opportunity_move, name="opportunity_move"),
    path("opportunities/<uuid:pk>/win/", opportunity_views.opportunity_win, name="opportunity_win"),
    path("opportunities/<uuid:pk>/lose/", opportunity_views.opportunity_lose, name="opportunity_lose"),
    path("opportunities/<uuid:pk>/reopen/", opportunity_views.opportunity_reopen, name="opportunity_reopen"),
    path("settings/", pipeline_views.pipeline_list, name="pipeline_list"),
    path("settings/rules/", pipeline_views.sales_rules, name="sales_rules"),
    path("settings/pipelines/new/", pipeline_views.pipeline_create, name="pipeline_create"),
    path("settings/pipelines/<uuid:pk>/", pipeline_views.pipeline_detail, name="pipeline_detail"),
    path("settings/pipelines/<uuid:pk>/rename/", pipeline_views.pipeline_rename, name="pipeline_rename"),
    path(
        "settings/pipelines/<uuid:pk>/default/",
        pipeline_views.pipeline_set_default,
        name="pipeline_set_default",
    ),
    path("settings/pipelines/<uuid:pk>/delete/", pipeline_views.pipeline_delete, name="pipeline_delete"),
    path("settings/pipelines/<uuid:pk>/stages/", pipeline_views.stage_create, name="stage_create"),
    path("settings/pipelines/<uuid:pk>/stages/order/", pipeline_views.stage_reorder, name="stage_reorder"),
    path("settings/stages/<uuid:pk>/", pipeline_views.stage_update, name="stage_update"),
    path("settings/stages/<uuid:pk>/move/", pipeline_views.stage_move, name="stage_move"),
    path("settings/stages/<uuid:pk>/delete/", pipeline_views.stage_delete, name="stage_delete"),
    # --- activities, My day (views/activities.py) ---
    path("my-day/", activities.my_day, name="my_day"),
    path(
        "opportunities/<uuid:pk>/activities/",
        activities.opportunity_activities,
        name="opportunity_activities",
    ),
    path(
        "opportunities/<uuid:pk>/activities/new/",
        activities.opportunity_activity_create,
        name="opportunity_activity_create",
    ),
    path("activities/new/", activities.activity_create, name="activity_create"),
    path("activities/<uuid:pk>/edit/", activities.activity_edit, name="activity_edit"),
    path("activities/<uuid:pk>/complete/", activities.activity_complete, name="activity_complete"),
    path("activities/<uuid:pk>/follow-up/", activities.activity_follow_up, name="activity_follow_up"),
    path("activities/<uuid:pk>/snooze/", activities.activity_snooze, name="activity_snooze"),
    path("activities/<uuid:pk>/delete/", activities.activity_delete, name="activity_delete"),
    # --- products, quotes, approvals, orders (views/products.py, views/quotes.py, views/orders.py) ---
    path("products/", products.product_list, name="product_list"),
    path("products/new/", products.product_create, name="product_create"),
    path("products/<uuid:pk>/edit/", products.product_edit, name="product_edit"),
    path("products/<uuid:pk>/active/", products.product_set_active, name="product_set_active"),
    path("opportunities/<uuid:pk>/quotes/", quotes.opportunity_quotes, name="opportunity_quotes"),
    path("opportunities/<uuid:pk>/quotes/new/", quotes.quote_create, name="quote_create"),
    path("quotes/", quotes.quote_list, name="quote_list"),
    path("quotes/approvals/", quotes.approval_queue, name="approval_queue"),
    path("quotes/<uuid:pk>/", quotes.quote_detail, name="quote_detail"),
    path("quotes/<uuid:pk>/edit/", quotes.quote_edit, name="quote_edit"),
    path("quotes/<uuid:pk>/lines/", quotes.quote_line_add, name="quote_line_add"),
    path("quotes/<uuid:pk>/lines/new/", quotes.quote_line_form, name="quote_line_form"),
    path("quotes/<uuid:pk>/lines/<uuid:item_pk>/", quotes.quote_line_update, name="quote_line_update"),
    path("quotes/<uuid:pk>/lines/<uuid:item_pk>/remove/", quotes.quote_line_remove, name="quote_line_remove"),
    path("quotes/<uuid:pk>/submit/", quotes.quote_submit, name="quote_submit"),
    path("quotes/<uuid:pk>/approve/", quotes.quote_approve, name="quote_approve"),
    path("quotes/<uuid:pk>/reject/", quotes.quote_reject, name="quote_reject"),
    path("quotes/<uuid:pk>/send/", quotes.quote_send, name="quote_send"),
    path("quotes/<uuid:pk>/accept/", quotes.quote_accept, name="quote_accept"),
    path("quotes/<uuid:pk>/decline/", quotes.quote_decline, name="quote_decline"),
    path("quotes/<uuid:pk>/revise/", quotes.quote_revise, name="quote_revise"),
    path("quotes/<uuid:pk>/compare/", quotes.quote_compare, name="quote_compare"),
    path("quotes/<uuid:pk>/print/", quotes.quote_print, name="quote_print"),
    path("quotes/<uuid:pk>/pdf/", quotes.quote_pdf, name="quote_pdf"),
    path("orders/", orders.order_list, name="order_list"),
    path("orders/<uuid:pk>/", orders.order_detail, name="order_detail"),
    # --- forecast, quotas (views/forecast.py) ---
    path("forecast/", forecast_views.forecast_page, name="forecast"),
    path("forecast/deals/", forecast_views.forecast_deals, name="forecast_deals"),
    path("quotas/", forecast_views.quotas, name="quotas"),
    # --- dashboard, performance analytics (views/dashboard.py) ---
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("analytics/", dashboard_views.team_analytics, name="analytics"),
]
