from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import checks, signals  # noqa: F401  (registers system checks and signal handlers)

        post_migrate.connect(_grant_app_role, sender=self, dispatch_uid="crm.grant_app_role")
        _register_navigation_and_search()


class CrmAdminConfig(AdminConfig):
    default_site = "crm.admin_site.CrmAdminSite"


def _register_navigation_and_search() -> None:
    from django.utils.translation import gettext_lazy as _

    from crm import navigation, search, selectors
    from crm.permissions import Capability

    for item in [
        navigation.NavItem(_("Home"), "home", "house", Capability.VIEW_DASHBOARD, order=0),
        navigation.NavItem(
            _("Organization"), "organization", "building", Capability.VIEW_ORGANIZATION, "settings", 10
        ),
        navigation.NavItem(_("Users"), "users:list", "people", Capability.VIEW_USERS, "settings", 20),
        navigation.NavItem(
            _("Audit log"), "audit:list", "journal-text", Capability.VIEW_AUDIT_LOG, "settings", 30
        ),
        navigation.NavItem(
            _("Admin site"), "admin:index", "sliders", Capability.USE_ADMIN_SITE, "settings", 90
        ),
    ]:
        navigation.register(item)
    search.register(search.SearchProvider(_("People"), Capability.VIEW_USERS, selectors.search_users))
    search.register(search.SearchProvider(_("Pages"), Capability.SEARCH, navigation.search_pages))


def _grant_app_role(sender, using, **kwargs) -> None:
    from crm.db.grants import grant_app_role

    grant_app_role(using=using)
