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


def _register_activities() -> None:
    """Activities and My day: nav item, 360 panel."""


def _register_quotes_and_orders() -> None:
    """Products, quotes, approvals, orders: nav items, 360 lifetime-value panel, merge reassigner."""


def _register_forecast() -> None:
    """Forecast and quotas: nav items."""


def _register_dashboard() -> None:
    """Sales dashboard and performance analytics: nav items."""
