"""Support in Django admin: tenant-aware like the platform's (crm.admin.TenantAdmin); org admins read,
platform operators manage. Everyday work happens in the app's own pages (the workspace, the settings pages)."""

from django.contrib import admin

from crm.admin import TenantAdmin
from support.models import Article, BusinessCalendar, CannedResponse, SlaPolicy, Ticket


@admin.register(Ticket)
class TicketAdmin(TenantAdmin):
    list_display = ["number", "subject", "status", "priority", "channel", "type", "assigned_to", "created_at"]
    list_filter = ["status", "priority", "channel", "type"]
    search_fields = ["subject"]
    readonly_fields = [
        "id",
        "number",
        "sla_policy",
        "first_response_due_at",
        "resolution_due_at",
        "first_response_warn_at",
        "resolution_warn_at",
        "sla_paused_since",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "reopened_count",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["organization", "customer", "assigned_to", "created_by"]
    show_full_result_count = False


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantAdmin):
    list_display = [
        "name",
        "position",
        "active",
        "set_priority",
        "first_response_minutes",
        "resolution_minutes",
    ]
    list_filter = ["active"]
    search_fields = ["name"]
    readonly_fields = ["id", "updated_at"]
    raw_id_fields = ["organization", "calendar"]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(TenantAdmin):
    list_display = ["name", "time_zone", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["id", "updated_at"]
    raw_id_fields = ["organization"]


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantAdmin):
    list_display = ["title", "created_by", "updated_at"]
    search_fields = ["title"]
    readonly_fields = ["id", "updated_at"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Article)
class ArticleAdmin(TenantAdmin):
    list_display = ["title", "status", "category", "published_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title"]
    readonly_fields = ["id", "body_html", "helpful_count", "not_helpful_count", "created_at", "updated_at"]
    raw_id_fields = ["organization", "author"]
