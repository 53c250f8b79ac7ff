"""Sales in Django admin: tenant-aware like the platform's (crm.admin.TenantAdmin); org admins read,
platform operators manage. Everyday work happens in the app's own pages (the board, the settings pages).
Each area adds its own models' admin classes below its heading."""

from django.contrib import admin

from crm.admin import TenantAdmin
from sales.models import Opportunity, OpportunityChange, Pipeline, SalesSettings, Stage

# --- Pipelines, stages, opportunities, sales rules -------------------------------------------------------


class StageInline(admin.TabularInline):
    model = Stage
    fields = ["position", "name", "probability", "forecast_category", "outcome"]
    ordering = ["position"]
    extra = 0
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Pipeline)
class PipelineAdmin(TenantAdmin):
    list_display = ["name", "organization", "is_default", "created_at"]
    list_filter = ["is_default"]
    search_fields = ["name"]
    readonly_fields = ["id", "created_at"]
    raw_id_fields = ["organization"]
    inlines = [StageInline]


@admin.register(Stage)
class StageAdmin(TenantAdmin):
    list_display = ["name", "pipeline", "position", "probability", "forecast_category", "outcome"]
    list_filter = ["outcome", "forecast_category"]
    search_fields = ["name"]
    readonly_fields = ["id"]
    raw_id_fields = ["organization", "pipeline"]


@admin.register(Opportunity)
class OpportunityAdmin(TenantAdmin):
    list_display = [
        "name",
        "customer",
        "stage",
        "status",
        "amount",
        "currency",
        "probability",
        "expected_close_date",
        "assigned_to",
        "created_at",
    ]
    list_filter = ["status", "forecast_category"]
    search_fields = ["name"]
    readonly_fields = ["id", "created_at", "updated_at", "stage_changed_at", "last_activity_at"]
    raw_id_fields = ["organization", "customer", "pipeline", "stage", "assigned_to", "created_by"]
    show_full_result_count = False


@admin.register(OpportunityChange)
class OpportunityChangeAdmin(TenantAdmin):
    list_display = ["changed_at", "opportunity", "field", "old_value", "new_value", "changed_by"]
    list_filter = ["field"]
    raw_id_fields = ["organization", "opportunity", "changed_by"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SalesSettings)
class SalesSettingsAdmin(TenantAdmin):
    list_display = [
        "organization",
        "opportunity_visibility",
        "no_activity_days",
        "approval_discount_pct",
        "approval_total",
        "quote_valid_days",
        "updated_at",
    ]
    readonly_fields = ["id", "updated_at"]
    raw_id_fields = ["organization"]
