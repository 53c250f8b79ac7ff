"""Views of the platform app: home, profile, organization settings, users, audit log, notifications,
search, health. Each states the capability it needs; each parses input with a form and calls one service
or selector."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from crm import health, search, selectors, services, signals
from crm.filters import AuditLogFilter, UserFilter
from crm.forms import (
    LoginForm,
    OrganizationForm,
    ProfileForm,
    TenantPasswordResetForm,
    UserCreateForm,
    UserEditForm,
)
from crm.pagination import keyset_page
from crm.permissions import Capability, CapabilityRequiredMixin, has_capability, requires
from crm.tables import UserTable


def _apply_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form (field errors beside fields, the rest on top)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _back(request, fallback: str) -> str:
    """Where 'cancel' and 'done' go: the page the user came from, if it is ours."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


# --- Authentication ------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    form_class = TenantPasswordResetForm
    success_url = reverse_lazy("password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("password_reset_complete")

    def get_user(self, uidb64):
        # The link names the account; let the users policy show that one row so the token can be checked.
        from django.utils.encoding import force_str
        from django.utils.http import urlsafe_base64_decode

        from crm.auth import reveal_user

        try:
            reveal_user(force_str(urlsafe_base64_decode(uidb64)))
        except (TypeError, ValueError, OverflowError):
            return None
        return super().get_user(uidb64)


class PasswordChangeView(CapabilityRequiredMixin, auth_views.PasswordChangeView):
    capability = Capability.EDIT_OWN_PROFILE
    success_url = reverse_lazy("password_change_done")


class PasswordChangeDoneView(CapabilityRequiredMixin, auth_views.PasswordChangeDoneView):
    capability = Capability.EDIT_OWN_PROFILE


# --- Home -------------------------------------------------------------------------------------------------


@requires(Capability.VIEW_DASHBOARD)
def home(request):
    if request.user.is_superuser and not request.user.organization_id:
        return render(request, "crm/home_platform.html", {"title": _("Platform")})
    return render(
        request, "crm/home.html", {"data": selectors.dashboard(actor=request.user), "title": _("Home")}
    )


# --- Profile ----------------------------------------------------------------------------------------------


@requires(Capability.EDIT_OWN_PROFILE)
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(user=request.user, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Your profile is saved."))
            return redirect("profile")
    return render(request, "crm/profile.html", {"form": form, "title": _("Your profile")})


# --- Organization -----------------------------------------------------------------------------------------


@requires(Capability.VIEW_ORGANIZATION)
def organization_settings(request):
    organization = request.user.organization
    if organization is None:
        return redirect("admin:crm_organization_changelist")
    can_edit = has_capability(request.user, Capability.MANAGE_ORGANIZATION)
    form = OrganizationForm(request.POST or None, instance=organization)
    if request.method == "POST":
        if not can_edit:
            return render(request, "403.html", status=403)
        if form.is_valid():
            try:
                services.organization_update(
                    organization=organization, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(request, _("Organization settings saved."))
                return redirect("organization")
    context = {
        "form": form,
        "can_edit": can_edit,
        "organization": organization,
        "seats": selectors.seat_usage(organization=organization),
        "title": _("Organization"),
    }
    return render(request, "crm/organization.html", context)


# --- Users ------------------------------------------------------------------------------------------------


@requires(Capability.VIEW_USERS)
def user_list(request):
    queryset = selectors.user_list(actor=request.user)
    filterset = UserFilter(request.GET or None, queryset=queryset)
    table = UserTable(filterset.qs, request=request)
    RequestConfig(request, paginate=False).configure(table)
    context = {
        "filter": filterset,
        "table": table,
        "seats": selectors.seat_usage(organization=selectors.organization_of(actor=request.user)),
        "can_manage": has_capability(request.user, Capability.MANAGE_USERS),
        "title": _("Users"),
    }
    return render(request, "crm/users/list.html", context)


@requires(Capability.MANAGE_USERS)
def user_create(request):
    organization = selectors.organization_of(actor=request.user)
    form = UserCreateForm(request.POST or None)
    seats = selectors.seat_usage(organization=organization)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "send_invite"}
        try:
            user = services.user_create(organization=organization, actor=request.user, **data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            if form.cleaned_data["send_invite"]:
                services.user_invite_send(user=user, base_url=request.build_absolute_uri("/"))
                messages.success(request, _("%(name)s is added and invited by email.") % {"name": user})
            else:
                messages.success(request, _("%(name)s is added.") % {"name": user})
            return redirect("users:list")
    return render(
        request,
        "crm/users/form.html",
        {"form": form, "seats": seats, "title": _("Add a user"), "creating": True},
    )


@requires(Capability.MANAGE_USERS)
def user_edit(request, pk):
    user = selectors.user_get(actor=request.user, pk=pk)
    form = UserEditForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(user=user, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": user})
            return redirect(_back(request, reverse("users:list")))
    context = {
        "form": form,
        "subject": user,
        "title": _("Edit %(name)s") % {"name": user},
        "activity": selectors.audit_log_list(actor=request.user).filter(
            table_name="users", record_id=str(user.pk)
        )[:10],
    }
    return render(request, "crm/users/form.html", context)


@require_POST
@requires(Capability.MANAGE_USERS)
def user_set_active(request, pk):
    user = selectors.user_get(actor=request.user, pk=pk)
    activate = request.POST.get("active") == "1"
    try:
        if activate:
            services.user_reactivate(user=user, actor=request.user)
            messages.success(request, _("%(name)s is active again.") % {"name": user})
        else:
            services.user_deactivate(user=user, actor=request.user)
            messages.success(
                request, _("%(name)s is deactivated and signed out everywhere.") % {"name": user}
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(_back(request, reverse("users:list")))


# --- Audit log --------------------------------------------------------------------------------------------


@requires(Capability.VIEW_AUDIT_LOG)
def audit_log(request):
    people = list(selectors.user_list(actor=request.user).only("id", "first_name", "last_name", "email"))
    filterset = AuditLogFilter(
        request.GET or None,
        queryset=selectors.audit_log_list(actor=request.user),
        tables=selectors.audited_tables(),
        users=people,
    )
    page = keyset_page(
        filterset.qs, ordering=("-occurred_at", "-id"), cursor=request.GET.get("cursor"), per_page=50
    )
    by_id = {u.pk: u for u in people}
    rows = [{"entry": e, "user": by_id.get(e.user_id)} for e in page.items]
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "filter": filterset,
        "page": page,
        "rows": rows,
        "querystring": query.urlencode(),
        "title": _("Audit log"),
    }
    template = (
        "crm/audit/_rows.html"
        if request.htmx and request.htmx.target == "audit-results"
        else "crm/audit/list.html"
    )
    return render(request, template, context)


@requires(Capability.VIEW_AUDIT_LOG)
def audit_entry(request, pk):
    entry = selectors.audit_entry_get(actor=request.user, pk=pk)
    people = selectors.users_by_id(actor=request.user, ids=[entry.user_id])
    fields = sorted(set((entry.old_values or {}).keys()) | set((entry.new_values or {}).keys()))
    changes = [
        {"field": f, "old": (entry.old_values or {}).get(f), "new": (entry.new_values or {}).get(f)}
        for f in fields
    ]
    signals.audit_entry_viewed.send(sender=audit_entry, request=request, entry=entry)
    context = {
        "entry": entry,
        "actor": people.get(entry.user_id),
        "changes": changes,
        "title": _("Audit entry"),
    }
    return render(request, "crm/audit/detail.html", context)


# --- Notifications ----------------------------------------------------------------------------------------


@requires(Capability.VIEW_NOTIFICATIONS)
def notification_list(request):
    page = keyset_page(
        selectors.notifications_for(user=request.user),
        ordering=("-created_at", "-id"),
        cursor=request.GET.get("cursor"),
        per_page=30,
    )
    return render(request, "crm/notifications/list.html", {"page": page, "title": _("Notifications")})


@require_GET
@requires(Capability.VIEW_NOTIFICATIONS)
def notification_bell(request):
    """The bell's badge and menu (htmx, polled every minute)."""
    context = {
        "unread": selectors.unread_notification_count(user=request.user),
        "latest": list(selectors.notifications_for(user=request.user)[:6])
        if request.user.organization_id
        else [],
    }
    return render(request, "crm/notifications/_bell.html", context)


@require_POST
@requires(Capability.VIEW_NOTIFICATIONS)
def notification_open(request, pk):
    notification = selectors.notification_get(user=request.user, pk=pk)
    services.notifications_mark_read(recipient=request.user, ids=[notification.pk])
    target = notification.url if url_has_allowed_host_and_scheme(notification.url, set()) else ""
    return HttpResponseRedirect(target or reverse("notifications:list"))


@require_POST
@requires(Capability.VIEW_NOTIFICATIONS)
def notification_read_all(request):
    count = services.notifications_mark_read(recipient=request.user)
    messages.success(request, _("%(count)d notifications marked read.") % {"count": count})
    return redirect(_back(request, reverse("notifications:list")))


# --- Search -----------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.SEARCH)
def global_search(request):
    query = request.GET.get("q", "")
    groups = search.search_all(user=request.user, query=query)
    context = {"query": query, "groups": groups, "title": _("Search")}
    if request.htmx:
        return render(request, "crm/search/_results.html", context)
    return render(request, "crm/search/page.html", context)


# --- Health -----------------------------------------------------------------------------------------------


@never_cache
@require_GET
def healthz(request):
    """Liveness of PostgreSQL, Redis and the Celery worker: 200 when all are up, 503 otherwise. Public, and
    says nothing beyond up/down and latency."""
    report = health.check_all()
    return JsonResponse(report, status=200 if report["ok"] else 503)
