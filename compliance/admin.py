"""Compliance in Django admin: tenant-aware like the platform's (crm.admin.TenantAdmin). Privacy requests
are read-only here for everyone but platform operators: their workflow (verification, deadlines, exports,
erasure) runs only through the services, from the request pages."""

from django.contrib import admin

from compliance.models import CcpaRequest, GdprRequest
from crm.admin import TenantAdmin


class PrivacyRequestAdmin(TenantAdmin):
    list_display = ["__str__", "request_type", "status", "requester_email", "received_at", "due_at"]
    list_filter = ["status", "request_type", "source"]
    search_fields = ["requester_email", "requester_name"]
    ordering = ["due_at"]
    readonly_fields = [
        "id",
        "number",
        "verification_sent_at",
        "verification_attempts",
        "verified_by",
        "result",
        "export_file",
        "export_expires_at",
        "reminded_at",
        "created_at",
    ]
    exclude = ["verification_code_hash"]
    raw_id_fields = ["customer", "assigned_to", "created_by"]


@admin.register(GdprRequest)
class GdprRequestAdmin(PrivacyRequestAdmin):
    pass


@admin.register(CcpaRequest)
class CcpaRequestAdmin(PrivacyRequestAdmin):
    readonly_fields = [*PrivacyRequestAdmin.readonly_fields, "resident_state", "data_categories"]
