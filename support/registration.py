"""What the support app adds to the platform: navigation, search, audit-trail nouns, customer 360 panels,
scoring count sources and merge reassigners. Each area registers in its own function."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_audit_nouns()
    _register_scoring()
    _register_tickets()
    _register_settings()
    _register_knowledge_base()
    _register_reports()


def _register_audit_nouns() -> None:
    from crm.models import AuditLog

    AuditLog.NOUNS.update(
        {
            "support_tickets": _("ticket"),
            "ticket_messages": _("ticket message"),
            "support_sla_policies": _("SLA policy"),
            "support_calendars": _("business-hours calendar"),
            "support_agents": _("agent capacity"),
            "support_canned_responses": _("canned response"),
            "kb_articles": _("article"),
        }
    )


def _register_scoring() -> None:
    """The health score's open issues: the customer's tickets that are not resolved or closed."""
    from customers.scoring import CountSource, register_count_source

    register_count_source(
        "open_issues",
        CountSource(
            "support.tickets",
            "SELECT customer_id, count(*) AS n FROM support_tickets"
            " WHERE organization_id = %(organization_id)s AND status NOT IN ('resolved', 'closed')"
            " GROUP BY customer_id",
        ),
    )


def _register_tickets() -> None:
    """Tickets, queues, the agent workspace: nav items, search provider, 360 panel, merge reassigner."""


def _register_settings() -> None:
    """SLA policies, calendars, agent capacity, canned responses: nav items."""


def _register_knowledge_base() -> None:
    """Knowledge base: nav item."""


def _register_reports() -> None:
    """CSAT, NPS, agent performance and workload: nav items."""
