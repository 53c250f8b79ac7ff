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
    }
)
_MANAGERS = _EVERYONE | {Capability.VIEW_USERS, Capability.EXPORT_CUSTOMERS, Capability.MERGE_CUSTOMERS}
_LIST_OWNERS = {  # whoever owns the customer base as a whole: bulk changes, imports, segments
    Capability.BULK_EDIT_CUSTOMERS,
    Capability.IMPORT_CUSTOMERS,
    Capability.MANAGE_SEGMENTS,
}

MATRIX: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.SALES_MANAGER: _MANAGERS | _LIST_OWNERS,
    Role.SALES_REP: _EVERYONE,
    Role.SUPPORT_MANAGER: _MANAGERS,
    Role.SUPPORT_AGENT: _EVERYONE,
    Role.MARKETING_MANAGER: _MANAGERS | _LIST_OWNERS,
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
