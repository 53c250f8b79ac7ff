"""The admin site: open to platform operators and to org admins (who see only their organization)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.permissions import Capability, has_capability


class CrmAdminSite(admin.AdminSite):
    site_header = _("CRM administration")
    site_title = _("CRM admin")
    index_title = _("Administration")

    def has_permission(self, request):
        user = request.user
        return user.is_active and (user.is_superuser or has_capability(user, Capability.USE_ADMIN_SITE))
