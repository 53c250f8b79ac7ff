"""Django admin, tenant-aware: platform operators see every organization; an org admin sees only their own
(the queryset filter here, row-level security underneath) and can do only what the capability matrix
allows."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from crm import services
from crm.models import AuditLog, Notification, Organization, User
from crm.permissions import Capability, Role, has_capability

site = admin.site  # the default site is a crm.admin_site.CrmAdminSite (crm.apps.CrmAdminConfig)


class TenantAdmin(admin.ModelAdmin):
    """Org admins see and touch only their organization's rows; superusers see all."""

    org_admin_can_change = False
    org_admin_can_add = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(organization_id=request.user.organization_id)

    def _org_admin(self, request) -> bool:
        return has_capability(request.user, Capability.USE_ADMIN_SITE) and not request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser or self._org_admin(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or self._org_admin(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser or (self._org_admin(request) and self.org_admin_can_change)

    def has_add_permission(self, request):
        return request.user.is_superuser or (self._org_admin(request) and self.org_admin_can_add)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_object(self, request, object_id, from_field=None):
        # Another organization's row (or none at all) answers 404 before any permission check, as everywhere
        # else in the app: Django would otherwise answer 403 to a POST or a delete the org admin may not do.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another organization's row (or none at all) answers 404, as everywhere else in the app.
        raise Http404


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    list_display = ["name", "slug", "plan", "status", "seat_limit", "renewal_date", "created_at"]
    list_filter = ["plan", "status"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["id", "created_at", "updated_at"]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(pk=request.user.organization_id)


@admin.register(User)
class UserAdmin(TenantAdmin, DjangoUserAdmin):
    org_admin_can_change = True
    ordering = ["email"]
    list_display = [
        "email",
        "first_name",
        "last_name",
        "organization",
        "role",
        "department",
        "is_active",
        "last_login",
    ]
    list_filter = ["role", "department", "is_active", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["id", "last_login", "date_joined", "deactivated_at"]
    filter_horizontal = ()
    fieldsets = [
        (None, {"fields": ["id", "email", "password"]}),
        (_("Person"), {"fields": ["first_name", "last_name", "job_title", "time_zone", "preferences"]}),
        (_("Organization"), {"fields": ["organization", "role", "department", "is_active", "is_superuser"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined", "deactivated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "organization", "role", "password1", "password2"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Org admins cannot move users between organizations or mint platform operators.
            fields += ["organization", "is_superuser", "email", "password"]
        return fields

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role":
            kwargs["choices"] = [("", "—"), *list(Role.choices)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def user_change_password(self, request, id, form_url=""):
        # Setting someone else's password is for platform operators only; an org admin sends a reset link
        # (the user then chooses it). Another organization's user still answers 404 first.
        if not request.user.is_superuser:
            self.get_object(request, unquote(id))
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def save_model(self, request, obj, form, change):
        if change and not request.user.is_superuser and "is_active" in form.changed_data:
            # Seat limits and session ending live in the services, whoever deactivates.
            obj.is_active = not obj.is_active
            if obj.is_active:
                services.user_deactivate(user=obj, actor=request.user)
            else:
                services.user_reactivate(user=obj, actor=request.user)
            return
        super().save_model(request, obj, form, change)


@admin.register(Notification)
class NotificationAdmin(TenantAdmin):
    list_display = ["title", "recipient", "level", "created_at", "read_at"]
    list_filter = ["level"]
    search_fields = ["title"]
    raw_id_fields = ["recipient", "organization"]


@admin.register(AuditLog)
class AuditLogAdmin(TenantAdmin):
    """Read-only for everyone: the database refuses UPDATE and DELETE on this table anyway."""

    list_display = ["occurred_at", "operation", "table_name", "record_id", "user_id", "request_id"]
    list_filter = ["operation", "table_name", "sensitivity"]
    search_fields = ["record_id", "request_id"]
    date_hierarchy = None
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
