"""What the sales app adds to the platform: navigation, search, audit-trail nouns, customer 360 panels and
merge reassigners. Each area registers in its own function."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_audit_nouns()
    _register_scoring()
    _register_opportunities()
    _register_activities()
    _register_quotes_and_orders()
    _register_forecast()
    _register_dashboard()


def _register_audit_nouns() -> None:
    from crm.models import AuditLog

    AuditLog.NOUNS.update(
        {
            "opportunities": _("opportunity"),
            "quotes": _("quote"),
            "quote_items": _("quote line"),
            "orders": _("order"),
            "products": _("product"),
            "sales_pipelines": _("pipeline"),
            "sales_stages": _("stage"),
            "sales_settings": _("sales settings"),
            "sales_quotas": _("quota"),
        }
    )


def _register_scoring() -> None:
    """The lead score's `opportunity_count` factor: every opportunity of the customer, as the design
    document's `calculate_dynamic_lead_score` counts them (open or closed)."""
    from customers.scoring import CountSource, register_count_source

    register_count_source(
        "opportunities",
        CountSource(
            "sales.opportunities",
            "SELECT customer_id, count(*) AS n FROM opportunities"
            " WHERE organization_id = %(organization_id)s GROUP BY customer_id",
        ),
    )


def _register_opportunities() -> None:
    """Board, list, opportunity pages, pipelines: nav items, search provider, 360 panel, merge reassigner."""
    from crm import navigation, search
    from crm.permissions import Capability
    from customers import merging, panels
    from sales.selectors import opportunities as selectors
    from sales.services.opportunities import opportunities_reassign

    view, manage = Capability.VIEW_OPPORTUNITIES, Capability.MANAGE_PIPELINES
    for item in (
        navigation.NavItem(_("Pipeline"), "sales:board", "kanban", view, "sales", 10),
        navigation.NavItem(_("Opportunities"), "sales:opportunity_list", "briefcase", view, "sales", 20),
        navigation.NavItem(_("Pipelines & rules"), "sales:pipeline_list", "sliders", manage, "settings", 35),
    ):
        navigation.register(item)
    search.register(search.SearchProvider(_("Opportunities"), view, selectors.search_opportunities))
    panels.register(
        panels.Panel(
            key="active_opportunities",
            title=_("Open opportunities"),
            template="sales/opportunities/_customer_panel.html",
            capability=Capability.VIEW_OPPORTUNITIES,
            load=selectors.open_opportunities_for_customer,
            order=20,
        )
    )
    merging.register(opportunities_reassign, label=_("Opportunities"), count=selectors.opportunities_count)


def _register_activities() -> None:
    """Activities and My day: nav item, 360 panel, merge reassigner."""
    from crm import navigation
    from crm.permissions import Capability
    from customers import merging, panels
    from sales.selectors.activities import upcoming_for_customer
    from sales.services.activities import activities_count, activities_reassign

    navigation.register(
        navigation.NavItem(
            _("My day"), "sales:my_day", "calendar-check", Capability.EDIT_OPPORTUNITIES, "sales", 5
        )
    )
    panels.register(
        panels.Panel(
            key="upcoming_activities",
            title=_("Upcoming activities"),
            template="sales/activities/_customer_panel.html",
            capability=Capability.VIEW_OPPORTUNITIES,
            load=upcoming_for_customer,
            order=25,
        )
    )
    merging.register(activities_reassign, label=_("Activities"), count=activities_count)


def _register_quotes_and_orders() -> None:
    """Products, quotes, approvals, orders: nav items, 360 lifetime-value panel, merge reassigner."""
    from crm import navigation
    from crm.permissions import Capability
    from customers import merging, panels
    from sales.selectors.orders import lifetime_value
    from sales.services.orders import orders_count, orders_reassign

    for item in (
        navigation.NavItem(
            _("Quotes"), "sales:quote_list", "file-earmark-text", Capability.VIEW_QUOTES, "sales", 40
        ),
        navigation.NavItem(
            _("Approvals"), "sales:approval_queue", "check2-square", Capability.APPROVE_QUOTES, "sales", 45
        ),
        navigation.NavItem(_("Orders"), "sales:order_list", "receipt", Capability.VIEW_ORDERS, "sales", 50),
        navigation.NavItem(
            _("Products"), "sales:product_list", "box-seam", Capability.MANAGE_PRODUCTS, "settings", 40
        ),
    ):
        navigation.register(item)
    panels.register(
        panels.Panel(
            key="lifetime_value_metrics",
            title=_("Lifetime value"),
            template="sales/orders/_lifetime_value_panel.html",
            capability=Capability.VIEW_ORDERS,
            load=lifetime_value,
            order=40,
        )
    )
    merging.register(orders_reassign, label=_("Orders"), count=orders_count)


def _register_forecast() -> None:
    """Forecast and quotas: nav items."""
    from crm import navigation
    from crm.permissions import Capability

    for item in (
        navigation.NavItem(
            _("Forecast"), "sales:forecast", "graph-up-arrow", Capability.VIEW_FORECAST, "sales", 55
        ),
        navigation.NavItem(_("Quotas"), "sales:quotas", "bullseye", Capability.MANAGE_QUOTAS, "sales", 57),
    ):
        navigation.register(item)


def _register_dashboard() -> None:
    """Sales dashboard and performance analytics: nav items."""
    from crm import navigation
    from crm.permissions import Capability

    for item in (
        navigation.NavItem(
            _("Sales dashboard"),
            "sales:dashboard",
            "speedometer2",
            Capability.VIEW_SALES_DASHBOARD,
            "sales",
            60,
        ),
        navigation.NavItem(
            _("Team performance"), "sales:analytics", "trophy", Capability.VIEW_SALES_ANALYTICS, "sales", 70
        ),
    ):
        navigation.register(item)
