"""URLs of the support app, under /support/. Each area keeps its imports and routes in its own section."""

from django.urls import path

from support.views import canned as canned_views  # canned responses (macros)
from support.views import kb as kb_views  # knowledge base
from support.views import reports as report_views  # surveys and reports
from support.views import settings as settings_views  # SLA policies, business hours
from support.views import tickets as ticket_views  # tickets and workspace
from support.views import workload as workload_views  # routing and workload

app_name = "support"

urlpatterns = [
    # --- tickets and workspace ---
    path("", ticket_views.queue_page, name="queue"),
    path("tickets/bulk/", ticket_views.queue_bulk, name="queue_bulk"),
    path("tickets/new/", ticket_views.ticket_create, name="ticket_create"),
    path("tickets/new/customer/", ticket_views.customer_lookup, name="ticket_customer_lookup"),
    path("tickets/<uuid:pk>/", ticket_views.ticket_detail, name="ticket_detail"),
    path("tickets/<uuid:pk>/reply/", ticket_views.ticket_reply, name="ticket_reply"),
    path("tickets/<uuid:pk>/status/", ticket_views.ticket_status, name="ticket_status"),
    path("tickets/<uuid:pk>/priority/", ticket_views.ticket_priority, name="ticket_priority"),
    path("tickets/<uuid:pk>/assign/", ticket_views.ticket_assign, name="ticket_assign"),
    path("tickets/<uuid:pk>/unassign/", ticket_views.ticket_unassign, name="ticket_unassign"),
    path("tickets/<uuid:pk>/edit/", ticket_views.ticket_edit, name="ticket_edit"),
    path("attachments/<uuid:pk>/", ticket_views.attachment_download, name="attachment_download"),
    path("canned/", canned_views.canned_list, name="canned_list"),
    path("canned/new/", canned_views.canned_create, name="canned_create"),
    path("canned/<uuid:pk>/", canned_views.canned_edit, name="canned_edit"),
    path("canned/<uuid:pk>/delete/", canned_views.canned_delete, name="canned_delete"),
    # --- SLA settings (views/settings.py) ---
    path("settings/sla/", settings_views.policy_list, name="sla_policy_list"),
    path("settings/sla/new/", settings_views.policy_create, name="sla_policy_create"),
    path("settings/sla/defaults/", settings_views.policy_defaults, name="sla_policy_defaults"),
    path("settings/sla/<uuid:pk>/", settings_views.policy_edit, name="sla_policy_edit"),
    path("settings/sla/<uuid:pk>/move/", settings_views.policy_move, name="sla_policy_move"),
    path("settings/sla/<uuid:pk>/delete/", settings_views.policy_delete, name="sla_policy_delete"),
    path("settings/business-hours/", settings_views.calendar_list, name="calendar_list"),
    path("settings/business-hours/new/", settings_views.calendar_create, name="calendar_create"),
    path("settings/business-hours/<uuid:pk>/", settings_views.calendar_edit, name="calendar_edit"),
    path("settings/business-hours/<uuid:pk>/delete/", settings_views.calendar_delete, name="calendar_delete"),
    path("settings/business-hours/<uuid:pk>/holidays/", settings_views.holiday_add, name="holiday_add"),
    path("settings/holidays/<uuid:pk>/delete/", settings_views.holiday_delete, name="holiday_delete"),
    # --- routing and workload (views/workload.py) ---
    path("workload/", workload_views.workload_page, name="workload"),
    path("workload/route/", workload_views.route_waiting_now, name="workload_route_waiting"),
    path("workload/agents/<uuid:pk>/", workload_views.agent_rebalance, name="workload_agent"),
    path("workload/agents/<uuid:pk>/capacity/", workload_views.agent_capacity, name="workload_capacity"),
    # --- knowledge base ---
    path("kb/", kb_views.article_list, name="kb_list"),
    path("kb/new/", kb_views.article_create, name="kb_create"),
    path("kb/preview/", kb_views.article_preview, name="kb_preview"),
    path("kb/<uuid:pk>/", kb_views.article_detail, name="kb_detail"),
    path("kb/<uuid:pk>/edit/", kb_views.article_edit, name="kb_edit"),
    path("kb/<uuid:pk>/publish/", kb_views.article_publish, name="kb_publish"),
    path("kb/<uuid:pk>/delete/", kb_views.article_delete, name="kb_delete"),
    # --- email ---
    # --- surveys and reports ---
    path("reports/", report_views.satisfaction, name="reports"),
    path("reports/agents/", report_views.performance, name="report_agents"),
    path("reports/comments/", report_views.comments, name="report_comments"),
]
