"""System checks of the platform app."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def owner_role_is_separate(app_configs, **kwargs):
    """The app must not connect as the role that owns the schema (it would bypass nothing, but could alter
    or drop the policies that protect tenants)."""
    app_user = settings.DATABASES["default"].get("USER")
    owner_user = settings.DATABASE_OWNER.get("USER")
    if app_user and app_user == owner_user:
        return [
            Warning(
                "DATABASE_URL and DATABASE_OWNER_URL use the same role.",
                hint="Create a separate owner and app role: python -m crm.db.roles --admin-url ...",
                id="crm.W001",
            )
        ]
    return []
