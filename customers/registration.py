"""What the customers app adds to the platform: navigation, search, audit-trail nouns."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm import navigation, search
    from crm.models import AuditLog
    from crm.permissions import Capability
    from customers import selectors

    navigation.register(
        navigation.NavItem(
            _("Customers"), "customers:list", "person-vcard", Capability.VIEW_CUSTOMERS, order=10
        )
    )
    navigation.register(
        navigation.NavItem(
            _("Duplicates"), "customers:duplicates", "intersect", Capability.MERGE_CUSTOMERS, order=50
        )
    )
    navigation.register(
        navigation.NavItem(
            _("Segments"), "customers:segment_list", "diagram-3", Capability.VIEW_SEGMENTS, "main", 30
        )
    )
    navigation.register(
        navigation.NavItem(
            _("Imports"), "customers:imports", "upload", Capability.IMPORT_CUSTOMERS, "main", 40
        )
    )
    navigation.register(
        navigation.NavItem(
            _("Lead scoring"), "customers:scoring", "speedometer2", Capability.MANAGE_SCORING, "settings", 40
        )
    )
    search.register(
        search.SearchProvider(_("Customers"), Capability.VIEW_CUSTOMERS, selectors.search_customers)
    )

    AuditLog.NOUNS.update(
        {
            "customers": _("customer"),
            "customer_segments": _("segment"),
            "lead_scoring_models": _("scoring model"),
        }
    )
