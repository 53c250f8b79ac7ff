"""Customers in Django admin: tenant-aware like the platform's (crm.admin.TenantAdmin); org admins read,
platform operators manage. Everyday work happens in the app's own pages."""

from django.contrib import admin

from crm.admin import TenantAdmin
from customers.models import (
    Customer,
    ImportJob,
    Interaction,
    LifecycleChange,
    ScoreHistory,
    ScoringModel,
    Segment,
    SegmentEvent,
    SegmentMember,
)


class ReadOnlyTenantAdmin(TenantAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    list_display = [
        "number",
        "first_name",
        "last_name",
        "email",
        "company_name",
        "lifecycle_stage",
        "lead_score",
        "assigned_to",
        "status",
        "created_at",
    ]
    list_filter = ["lifecycle_stage", "status", "vip_status", "customer_type"]
    search_fields = ["email", "first_name", "last_name", "company_name"]
    readonly_fields = [
        "id",
        "number",
        "lead_score",
        "engagement_score",
        "health_score",
        "scored_at",
        "created_at",
        "updated_at",
        "erased_at",
        "anonymized_at",
    ]
    raw_id_fields = ["organization", "assigned_to", "created_by"]
    show_full_result_count = False


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyTenantAdmin):
    list_display = ["interaction_date", "interaction_type", "channel", "customer", "logged_by"]
    list_filter = ["interaction_type", "channel", "sentiment"]
    raw_id_fields = ["organization", "customer", "logged_by"]
    show_full_result_count = False


@admin.register(LifecycleChange)
class LifecycleChangeAdmin(ReadOnlyTenantAdmin):
    list_display = ["changed_at", "customer", "from_stage", "to_stage", "changed_by", "reason"]
    raw_id_fields = ["organization", "customer", "changed_by"]


@admin.register(ScoreHistory)
class ScoreHistoryAdmin(ReadOnlyTenantAdmin):
    list_display = ["scored_at", "customer", "lead_score", "engagement_score", "health_score"]
    raw_id_fields = ["organization", "customer"]
    show_full_result_count = False


@admin.register(ScoringModel)
class ScoringModelAdmin(ReadOnlyTenantAdmin):
    list_display = ["organization", "updated_at", "updated_by"]


@admin.register(Segment)
class SegmentAdmin(ReadOnlyTenantAdmin):
    list_display = ["name", "kind", "member_count", "refreshed_at"]
    list_filter = ["kind"]


@admin.register(SegmentMember)
class SegmentMemberAdmin(ReadOnlyTenantAdmin):
    list_display = ["segment", "customer", "added_at", "matched_rule"]
    raw_id_fields = ["organization", "segment", "customer", "added_by"]


@admin.register(SegmentEvent)
class SegmentEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["at", "segment", "customer", "kind", "rule"]
    raw_id_fields = ["organization", "segment", "customer"]


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "created_at",
        "kind",
        "file_name",
        "status",
        "total_rows",
        "created_count",
        "updated_count",
    ]
    list_filter = ["kind", "status"]
