"""Marketing in Django admin: tenant-aware like the platform's (crm.admin.TenantAdmin); org admins read,
platform operators manage. Everyday work happens in the app's own pages. What the send tasks, sequences
and forms record (email sends, step runs, form submissions) is read-only for everyone: it is history."""

from django.contrib import admin

from crm.admin import TenantAdmin
from marketing.models import (
    ABTest,
    Campaign,
    CampaignSegment,
    CostEntry,
    EmailSend,
    EmailTemplate,
    Enrollment,
    FormSubmission,
    LeadForm,
    Sequence,
    Step,
    StepRun,
    Suppression,
    Variant,
)


class ReadOnlyTenantAdmin(TenantAdmin):
    """History rows: nobody adds, changes or deletes them here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    list_display = [
        "name",
        "status",
        "send_state",
        "start_date",
        "end_date",
        "budget",
        "actual_cost",
        "currency",
    ]
    list_filter = ["status", "send_state"]
    search_fields = ["name"]
    readonly_fields = [
        "id",
        "actual_cost",
        "send_state",
        "send_started_at",
        "send_finished_at",
        "send_error",
        "recipients_total",
        "sent_count",
        "delivered_count",
        "bounced_count",
        "failed_count",
        "opened_count",
        "clicked_count",
        "unsubscribed_count",
        "complained_count",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["organization", "owner", "template", "created_by"]
    show_full_result_count = False


@admin.register(CampaignSegment)
class CampaignSegmentAdmin(TenantAdmin):
    list_display = ["campaign", "segment"]
    readonly_fields = ["id"]
    raw_id_fields = ["organization", "campaign", "segment"]


@admin.register(CostEntry)
class CostEntryAdmin(TenantAdmin):
    list_display = ["description", "campaign", "category", "amount", "incurred_on"]
    list_filter = ["category"]
    search_fields = ["description"]
    readonly_fields = ["id", "created_at"]
    raw_id_fields = ["organization", "campaign", "created_by"]


@admin.register(EmailTemplate)
class EmailTemplateAdmin(TenantAdmin):
    list_display = ["name", "subject", "is_archived", "updated_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "subject"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Variant)
class VariantAdmin(TenantAdmin):
    list_display = ["campaign", "label", "subject", "recipients", "successes"]
    readonly_fields = ["id", "recipients", "successes", "revenue"]
    raw_id_fields = ["organization", "campaign", "template"]


@admin.register(ABTest)
class ABTestAdmin(TenantAdmin):
    list_display = ["campaign", "status", "metric", "test_share", "decide_at", "winner"]
    list_filter = ["status", "metric"]
    readonly_fields = ["id", "started_at", "decided_at", "winner", "p_value", "confidence", "explanation"]
    raw_id_fields = ["organization", "campaign", "default_variant"]


@admin.register(EmailSend)
class EmailSendAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "email",
        "campaign",
        "status",
        "scheduled_send_time",
        "sent_at",
        "opened_at",
        "clicked_at",
    ]
    list_filter = ["status", "in_test"]
    search_fields = ["email"]
    raw_id_fields = ["organization", "campaign", "customer", "variant", "step_run"]
    show_full_result_count = False


@admin.register(Suppression)
class SuppressionAdmin(TenantAdmin):
    list_display = ["email", "reason", "campaign", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]
    readonly_fields = ["id", "created_at"]
    raw_id_fields = ["organization", "campaign"]


@admin.register(Sequence)
class SequenceAdmin(TenantAdmin):
    list_display = ["name", "campaign", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["organization", "campaign", "enroll_segment", "created_by"]


@admin.register(Step)
class StepAdmin(TenantAdmin):
    list_display = ["sequence", "position", "kind", "template", "wait_days"]
    list_filter = ["kind"]
    readonly_fields = ["id"]
    raw_id_fields = ["organization", "sequence", "template"]


@admin.register(Enrollment)
class EnrollmentAdmin(TenantAdmin):
    list_display = ["sequence", "customer", "status", "source", "next_position", "next_run_at", "enrolled_at"]
    list_filter = ["status", "source"]
    readonly_fields = ["id", "enrolled_at", "finished_at"]
    raw_id_fields = ["organization", "sequence", "customer"]
    show_full_result_count = False


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyTenantAdmin):
    list_display = ["enrollment", "step", "outcome", "due_at", "ran_at"]
    list_filter = ["outcome"]
    raw_id_fields = ["organization", "enrollment", "step"]
    show_full_result_count = False


@admin.register(LeadForm)
class LeadFormAdmin(TenantAdmin):
    list_display = ["name", "slug", "campaign", "is_active", "submission_count"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["id", "submission_count", "created_at"]
    raw_id_fields = ["organization", "campaign", "sequence", "created_by"]


@admin.register(FormSubmission)
class FormSubmissionAdmin(ReadOnlyTenantAdmin):
    list_display = ["form", "customer", "consent_given", "created_customer", "submitted_at"]
    list_filter = ["consent_given", "created_customer"]
    raw_id_fields = ["organization", "form", "customer"]
    show_full_result_count = False
