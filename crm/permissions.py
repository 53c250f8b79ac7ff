"""The role -> capability matrix: one table, in one place.

Every view states the capability it needs (`CapabilityRequiredMixin.capability` or `@requires(...)`); the
navigation, the templates and Django admin ask the same question through `has_capability`. Platform
operators (Django superusers) act as `system_admin` and hold every capability.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    SALES_MANAGER = "sales_manager", _("Sales manager")
    SALES_REP = "sales_rep", _("Sales rep")
    SUPPORT_MANAGER = "support_manager", _("Support manager")
    SUPPORT_AGENT = "support_agent", _("Support agent")
    MARKETING_MANAGER = "marketing_manager", _("Marketing manager")


class Capability(StrEnum):
    VIEW_DASHBOARD = "dashboard.view"
    EDIT_OWN_PROFILE = "profile.edit"
    SEARCH = "search.use"
    VIEW_NOTIFICATIONS = "notifications.view"
    VIEW_ORGANIZATION = "organization.view"
    MANAGE_ORGANIZATION = "organization.manage"
    VIEW_USERS = "users.view"
    MANAGE_USERS = "users.manage"
    VIEW_AUDIT_LOG = "audit.view"
    USE_ADMIN_SITE = "admin.use"
    # customers
    VIEW_CUSTOMERS = "customers.view"
    EDIT_CUSTOMERS = "customers.edit"
    BULK_EDIT_CUSTOMERS = "customers.bulk_edit"
    EXPORT_CUSTOMERS = "customers.export"
    IMPORT_CUSTOMERS = "customers.import"
    MERGE_CUSTOMERS = "customers.merge"
    VIEW_SEGMENTS = "segments.view"
    MANAGE_SEGMENTS = "segments.manage"
    MANAGE_SCORING = "scoring.manage"
    # sales
    VIEW_OPPORTUNITIES = "opportunities.view"
    EDIT_OPPORTUNITIES = "opportunities.edit"
    EXPORT_OPPORTUNITIES = "opportunities.export"
    VIEW_ALL_OPPORTUNITIES = "opportunities.view_all"  # regardless of the "own only" visibility setting
    MANAGE_PIPELINES = "pipelines.manage"  # pipelines, stages and the organization's sales rules
    MANAGE_PRODUCTS = "products.manage"
    VIEW_QUOTES = "quotes.view"
    EDIT_QUOTES = "quotes.edit"
    APPROVE_QUOTES = "quotes.approve"
    VIEW_ORDERS = "orders.view"
    IMPORT_ORDERS = "orders.import"
    VIEW_FORECAST = "forecast.view"
    MANAGE_QUOTAS = "quotas.manage"
    VIEW_SALES_DASHBOARD = "sales_dashboard.view"
    VIEW_SALES_ANALYTICS = "sales_analytics.view"  # team and rep performance, leaderboard
    # support
    VIEW_TICKETS = "tickets.view"
    WORK_TICKETS = "tickets.work"  # reply, note, change status, take tickets
    MANAGE_TICKETS = "tickets.manage"  # assign to others, bulk actions, team queues, rebalancing
    MANAGE_SUPPORT_SETTINGS = "support_settings.manage"  # SLA policies, calendars, capacity, canned responses
    VIEW_SUPPORT_REPORTS = "support_reports.view"  # CSAT, NPS, agent performance, workload
    MANAGE_KNOWLEDGE_BASE = "kb.manage"
    # marketing
    VIEW_CAMPAIGNS = "campaigns.view"
    MANAGE_CAMPAIGNS = "campaigns.manage"  # campaigns, costs, email templates, sequences, lead forms
    SEND_CAMPAIGNS = "campaigns.send"  # launch, pause and resume email sends; suppressions
    VIEW_MARKETING_REPORTS = "marketing_reports.view"  # attribution, ROI, campaign comparison
    # compliance
    SUBMIT_PRIVACY_REQUESTS = "privacy.submit"  # log a GDPR/CCPA request a customer made (phone, letter)
    VIEW_PRIVACY_REQUESTS = "privacy.view"  # the request queue and each request's page
    PROCESS_PRIVACY_REQUESTS = "privacy.process"  # verify, extend, reject, run exports and erasures
    VIEW_ACCESS_LOG = "access_log.view"  # who viewed or exported whose personal data
    MANAGE_PRIVACY_SETTINGS = "privacy_settings.manage"  # retention periods, nightly anonymization


_EVERYONE = frozenset(
    {
        Capability.VIEW_DASHBOARD,
        Capability.EDIT_OWN_PROFILE,
        Capability.SEARCH,
        Capability.VIEW_NOTIFICATIONS,
        Capability.VIEW_ORGANIZATION,
        # Everyone who talks to customers sees and updates them, and logs what happened.
        Capability.VIEW_CUSTOMERS,
        Capability.EDIT_CUSTOMERS,
        Capability.VIEW_SEGMENTS,
        # Everyone may look at deals and orders (the customer page shows them); selling is for sales.
        Capability.VIEW_OPPORTUNITIES,
        Capability.VIEW_ORDERS,
        # ... and their tickets (the customer page shows them); working tickets is for support.
        Capability.VIEW_TICKETS,
        # Whoever talks to customers may log a privacy request they receive; processing is for admins.
        Capability.SUBMIT_PRIVACY_REQUESTS,
    }
)
_SELLERS = {  # whoever works deals: reps and their managers
    Capability.EDIT_OPPORTUNITIES,
    Capability.VIEW_QUOTES,
    Capability.EDIT_QUOTES,
    Capability.VIEW_FORECAST,
    Capability.VIEW_SALES_DASHBOARD,
}
_SALES_LEADS = {  # sales managers: approvals, rules, quotas, the whole team's numbers
    Capability.VIEW_ALL_OPPORTUNITIES,
    Capability.EXPORT_OPPORTUNITIES,
    Capability.MANAGE_PIPELINES,
    Capability.MANAGE_PRODUCTS,
    Capability.APPROVE_QUOTES,
    Capability.IMPORT_ORDERS,
    Capability.MANAGE_QUOTAS,
    Capability.VIEW_SALES_ANALYTICS,
}
_SUPPORT_AGENTS = {Capability.WORK_TICKETS, Capability.MANAGE_KNOWLEDGE_BASE}
_SUPPORT_LEADS = {
    Capability.MANAGE_TICKETS,
    Capability.MANAGE_SUPPORT_SETTINGS,
    Capability.VIEW_SUPPORT_REPORTS,
}
_MARKETERS = {
    Capability.VIEW_CAMPAIGNS,
    Capability.MANAGE_CAMPAIGNS,
    Capability.SEND_CAMPAIGNS,
    Capability.VIEW_MARKETING_REPORTS,
}
_MANAGERS = _EVERYONE | {
    Capability.VIEW_USERS,
    Capability.EXPORT_CUSTOMERS,
    Capability.MERGE_CUSTOMERS,
    Capability.VIEW_PRIVACY_REQUESTS,
}
_LIST_OWNERS = {  # whoever owns the customer base as a whole: bulk changes, imports, segments
    Capability.BULK_EDIT_CUSTOMERS,
    Capability.IMPORT_CUSTOMERS,
    Capability.MANAGE_SEGMENTS,
}

MATRIX: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    # Sales managers read campaigns and what they brought in (attribution); reps see the campaigns their
    # deals came from.
    Role.SALES_MANAGER: _MANAGERS
    | _LIST_OWNERS
    | _SELLERS
    | _SALES_LEADS
    | {Capability.VIEW_CAMPAIGNS, Capability.VIEW_MARKETING_REPORTS},
    Role.SALES_REP: _EVERYONE | _SELLERS | {Capability.VIEW_CAMPAIGNS},
    Role.SUPPORT_MANAGER: _MANAGERS | _SUPPORT_AGENTS | _SUPPORT_LEADS | {Capability.VIEW_ALL_OPPORTUNITIES},
    Role.SUPPORT_AGENT: _EVERYONE | _SUPPORT_AGENTS,
    # Marketing reads the pipeline and its dashboard (attribution), and sees every deal.
    Role.MARKETING_MANAGER: _MANAGERS
    | _LIST_OWNERS
    | _MARKETERS
    | {Capability.VIEW_ALL_OPPORTUNITIES, Capability.VIEW_SALES_DASHBOARD, Capability.VIEW_QUOTES},
}


def capabilities_of(user) -> frozenset[Capability]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(Capability)
    if not user.organization_id:
        return frozenset()
    return MATRIX.get(user.role, frozenset())


def has_capability(user, capability: Capability | str) -> bool:
    return Capability(capability) in capabilities_of(user)


def require_capability(actor, capability: Capability | str) -> None:
    """For services: raise PermissionDenied unless `actor` holds `capability`. `actor=None` is the system
    acting (a task, a command, demo data), which the caller has already decided may act."""
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def _to_login(request):
    # Imported here: django.contrib.auth.views needs the user model, which imports this module.
    from django.contrib.auth.views import redirect_to_login

    return redirect_to_login(request.get_full_path())


class CapabilityRequiredMixin:
    """Class-based views: anonymous users go to the login page, users without the capability get 403."""

    capability: Capability

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _to_login(request)
        if not has_capability(request.user, self.capability):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def requires(capability: Capability) -> Callable:
    """Function-based views: the same rule as `CapabilityRequiredMixin`."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return _to_login(request)
            if not has_capability(request.user, capability):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.capability = capability
        return wrapped

    return decorator
