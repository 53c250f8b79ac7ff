"""What the support app adds to the platform: navigation, search, audit-trail nouns, customer 360 panels,
scoring count sources and merge reassigners. Each area registers in its own function."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_user_hooks()
    _register_audit_nouns()
    _register_scoring()
    _register_tickets()
    _register_settings()
    _register_routing()
    _register_knowledge_base()
    _register_reports()


def _register_user_hooks() -> None:
    """A deactivated agent's open tickets are re-routed to the rest of the team."""
    from crm.signals import user_deactivated

    def requeue_tickets(sender, *, user, actor=None, **kwargs) -> None:
        from support.routing import agent_tickets_requeue

        agent_tickets_requeue(user=user)

    user_deactivated.connect(requeue_tickets, weak=False, dispatch_uid="support.requeue_deactivated_agent")


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
    from crm import navigation, search
    from crm.permissions import Capability
    from customers import merging, panels
    from support.selectors import tickets as selectors
    from support.services.merging import surveys_reassign, tickets_reassign

    for item in (
        navigation.NavItem(_("Tickets"), "support:queue", "inbox", Capability.VIEW_TICKETS, "support", 10),
        navigation.NavItem(
            _("Canned responses"),
            "support:canned_list",
            "chat-square-quote",
            Capability.WORK_TICKETS,
            "support",
            60,
        ),
    ):
        navigation.register(item)
    search.register(search.SearchProvider(_("Tickets"), Capability.VIEW_TICKETS, selectors.search_tickets))
    panels.register(
        panels.Panel(
            key="open_tickets",
            title=_("Open tickets"),
            template="support/tickets/_customer_panel.html",
            capability=Capability.VIEW_TICKETS,
            load=selectors.open_tickets_for_customer,
            order=30,
        )
    )
    merging.register(tickets_reassign, label=_("Tickets"), count=selectors.tickets_count)
    merging.register(surveys_reassign, label=_("Surveys"), count=selectors.surveys_count)


def _register_settings() -> None:
    """SLA policies, calendars, agent capacity, canned responses: nav items."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("SLA policies"),
            "support:sla_policy_list",
            "stopwatch",
            Capability.MANAGE_SUPPORT_SETTINGS,
            "settings",
            50,
        )
    )


def _register_routing() -> None:
    """Routing and workload: the Workload nav item."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Workload"), "support:workload", "people", Capability.MANAGE_TICKETS, "support", 40
        )
    )


def _register_knowledge_base() -> None:
    """Knowledge base: nav item (the articles; the public knowledge base at /kb/<org-slug>/ needs none)."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Knowledge base"),
            "support:kb_list",
            "journal-text",
            Capability.MANAGE_KNOWLEDGE_BASE,
            "support",
            50,
        )
    )


def _register_reports() -> None:
    """CSAT, NPS, agent performance and workload: nav items."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Support reports"),
            "support:reports",
            "graph-up",
            Capability.VIEW_SUPPORT_REPORTS,
            "support",
            30,
        )
    )
