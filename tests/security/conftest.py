"""Shared ground of the security tests: the URLconf walked into routes, the tenant tables read from the
catalog, two populated organizations, and snapshots that tell whether anything changed.

Discovery is the point: a URL, an admin model or a table added later is picked up here without anyone
editing these tests, and the tests that need to know how to build an object for it fail until they do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

from crm.models import AuditLog
from crm.tenancy import system_context
from marketing import webhooks as marketing_webhooks
from tests import factories
from tests.owner_db import owner_connection

# --- The URLconf --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern of the project, with the full route from the root of the URLconf."""

    route: str  # e.g. "settings/users/<uuid:pk>/" (regex parts kept as written)
    name: str  # namespaced, e.g. "users:edit"; "" for an unnamed pattern
    namespace: str
    params: tuple[str, ...]
    callback: Callable
    regex: bool  # some part is a regular expression: cannot be filled in by substitution

    @property
    def key(self) -> str:
        """How the tests' mappings refer to this route: its name, or its route when it has none."""
        return self.name or self.route

    @property
    def is_admin(self) -> bool:
        return self.namespace.split(":")[0] == admin.site.name

    @property
    def capability(self):
        view_class = getattr(self.callback, "view_class", None)
        return getattr(self.callback, "capability", None) or getattr(view_class, "capability", None)

    @property
    def model_admin(self) -> admin.ModelAdmin | None:
        """The ModelAdmin behind an admin URL (ModelAdmin.get_urls marks its views; UserAdmin's password view
        is the bound method itself, behind admin_view's wrappers)."""
        view = self.callback
        while view is not None:
            found = getattr(view, "model_admin", None) or getattr(view, "__self__", None)
            if isinstance(found, admin.ModelAdmin):
                return found
            view = getattr(view, "__wrapped__", None)
        return None

    @property
    def model_label(self) -> str:
        model_admin = self.model_admin
        return model_admin.model._meta.label_lower if model_admin else ""

    def url(self, **kwargs) -> str:
        if self.name:
            return reverse(self.name, kwargs=kwargs)
        if self.regex:
            raise ValueError(f"cannot build a URL for the regular expression {self.route!r}")
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), self.route)

    def __str__(self) -> str:
        return f"{self.key} (/{self.route})"


def url_routes() -> list[Route]:
    """Every URL pattern of the project (admin site included), walked recursively from the root URLconf."""
    routes: list[Route] = []

    def walk(resolver: URLResolver, chain: list, namespace: str) -> None:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                walk(entry, [*chain, entry.pattern], inner)
                continue
            assert isinstance(entry, URLPattern)
            patterns = [*chain, entry.pattern]
            params: list[str] = []
            for pattern in patterns:
                if isinstance(pattern, RoutePattern):
                    params.extend(pattern.converters)
                elif isinstance(pattern, RegexPattern):
                    params.extend(pattern.regex.groupindex)
            name = ""
            if entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
            routes.append(
                Route(
                    route="".join(str(p) for p in patterns),
                    name=name,
                    namespace=namespace,
                    params=tuple(params),
                    callback=entry.callback,
                    regex=any(isinstance(p, RegexPattern) for p in patterns),
                )
            )

    walk(get_resolver(), [], "")
    return routes


def app_routes() -> list[Route]:
    """The routes of the application itself (everything but the Django admin site)."""
    return [route for route in url_routes() if not route.is_admin]


# Views anyone may open, signed in or not. Everything else states a capability.
PUBLIC_VIEWS = frozenset(
    {
        "login",
        "logout",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
        "healthz",
        # The public knowledge base: published articles of the organization named in the URL, for anyone.
        "kb:home",
        "kb:article",
        "kb:vote",
        # A customer's survey link: the signed token is the credential (support/views/surveys.py).
        "survey:answer",
        # A lead capture form: anyone may fill in an open form of the organization named in the URL.
        "forms:form",
        # A marketing email's open pixel, click redirect and unsubscribe page: the signed token is the
        # credential (marketing/views/tracking.py).
        "tracking:open",
        "tracking:click",
        "tracking:unsubscribe",
        # A data subject's privacy request form and its code check: for anyone, per organization slug
        # (compliance/views/public.py); the request id is a random UUID7, and the code is the credential.
        "privacy_public:form",
        "privacy_public:verify",
        "privacy_public:verify_resend",
        # A privacy request's export download: the signed, expiring token is the credential
        # (compliance/exporting.py).
        "privacy_public:download",
    }
)
# The email provider's delivery webhooks (marketing/webhooks.py): the shared secret (HTTP basic auth) is the
# credential; a request without it meets the ordinary CSRF check.
PUBLIC_VIEWS |= {f"anymail:{pattern.name}" for pattern in marketing_webhooks.urlpatterns}

# Parameters that are not object ids, per route key, with the reason.
NOT_OBJECT_PARAMS: dict[str, frozenset[str]] = {
    # An organization's public knowledge base: open to anyone by design; that it shows only that
    # organization's published articles is tested in tests/support/test_kb_public.py.
    "kb:home": frozenset({"org_slug"}),
    # An organization's public privacy request form: open to anyone by design (tests/compliance/
    # test_public_requests.py).
    "privacy_public:form": frozenset({"org_slug"}),
    # A signed, expiring token (checked by Django) plus the account it names; probed on its own in
    # test_cross_tenant_urls.test_password_reset_link_names_another_org_account_but_reveals_and_changes_nothing.
    "password_reset_confirm": frozenset({"uidb64", "token"}),
    # A signed, expiring export-download token naming its organization and request: a bearer credential;
    # tampered tokens, other organizations' requests and expired links are probed in
    # tests/compliance/test_exporting.py.
    "privacy_public:download": frozenset({"token"}),
    # A signed, expiring survey token naming its organization and survey: a bearer credential (like the
    # password-reset link); forged, tampered and other organizations' tokens are probed in
    # tests/support/test_surveys_public.py.
    "survey:answer": frozenset({"token"}),
    # A marketing email's signed tracking token names its organization and email: a bearer credential;
    # tampered tokens and tokens naming another organization's email are probed in
    # tests/marketing/test_tracking.py and test_unsubscribe.py.
    "tracking:open": frozenset({"token"}),
    "tracking:click": frozenset({"token"}),
    "tracking:unsubscribe": frozenset({"token"}),
    # The admin's per-app index: an app label, not a row.
    "admin:app_list": frozenset({"app_label"}),
    # The admin's catch-all (404, or a redirect that adds a trailing slash).
    "admin/(?P<url>.*)$": frozenset({"url"}),
}


def object_url_kwargs(route: Route, side: SimpleNamespace, actor) -> list[dict]:
    """Keyword arguments that point `route` at objects of `side`'s organization (one dict per probe).

    `actor` is who will ask: a notification is addressed to one person, so for the actor's own organization
    the probe uses a notification of the actor, and for another organization one of its members'.
    Raises KeyError for a route this mapping does not know (the tests turn that into a failure).
    """
    own = actor.organization_id == side.org.pk
    if route.is_admin and route.model_label:
        make = ADMIN_TENANT_MODELS.get(route.model_label) or ADMIN_PLATFORM_MODELS[route.model_label]
        pk = make(side)
        return [dict.fromkeys(route.params, pk)]
    builders: dict[str, Callable[[], list[dict]]] = {
        "users:edit": lambda: [{"pk": side.member.pk}],
        "customers:detail": lambda: [{"pk": side.customer.pk}],
        "customers:edit": lambda: [{"pk": side.customer.pk}],
        "customers:timeline": lambda: [{"pk": side.customer.pk}],
        "customers:interaction_create": lambda: [{"pk": side.customer.pk}],
        "compliance:consent_record_add": lambda: [{"pk": side.customer.pk}],
        "customers:json360": lambda: [{"pk": side.customer.pk}],
        "customers:segment_detail": lambda: [{"pk": side.segment.pk}],
        "customers:segment_edit": lambda: [{"pk": side.segment.pk}],
        "customers:segment_refresh": lambda: [{"pk": side.segment.pk}],
        "customers:segment_remove_members": lambda: [{"pk": side.segment.pk}],
        # Deleting succeeds for the roles allowed to: each probe of one's own organization gets a fresh one.
        "customers:segment_delete": lambda: [
            {"pk": _disposable_segment(side.org) if own else side.segment.pk}
        ],
        "users:set_active": lambda: [{"pk": side.member.pk}],
        "customers:duplicates_merge": lambda: _customer_pairs(side, actor, own),
        "customers:duplicates_dismiss": lambda: _customer_pairs(side, actor, own),
        "customers:import_detail": lambda: [{"pk": side.import_job.pk}],
        "customers:import_progress": lambda: [{"pk": side.import_job.pk}],
        "customers:import_errors": lambda: [{"pk": side.import_job.pk}],
        "sales:opportunity_detail": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_edit": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_move": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_win": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_lose": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_reopen": lambda: [{"pk": side.opportunity.pk}],
        "sales:pipeline_detail": lambda: [{"pk": side.pipeline.pk}],
        "sales:pipeline_rename": lambda: [{"pk": side.pipeline.pk}],
        "sales:pipeline_set_default": lambda: [{"pk": side.pipeline.pk}],
        # Deleting succeeds for the roles allowed to: each probe of one's own organization gets a fresh one.
        "sales:pipeline_delete": lambda: [
            {"pk": _disposable_pipeline(side.org) if own else side.pipeline.pk}
        ],
        "sales:stage_create": lambda: [{"pk": side.pipeline.pk}],
        "sales:stage_reorder": lambda: [{"pk": side.pipeline.pk}],
        "sales:stage_update": lambda: [{"pk": side.stage.pk}],
        "sales:stage_move": lambda: [{"pk": side.stage.pk}],
        "sales:stage_delete": lambda: [{"pk": _disposable_stage(side.org) if own else side.stage.pk}],
        "sales:product_edit": lambda: [{"pk": side.product.pk}],
        "sales:product_set_active": lambda: [{"pk": side.product.pk}],
        "sales:opportunity_quotes": lambda: [{"pk": side.opportunity.pk}],
        "sales:quote_create": lambda: [{"pk": side.opportunity.pk}],
        **{f"sales:quote_{name}": lambda: [{"pk": side.quote.pk}] for name in QUOTE_URLS},
        "sales:quote_line_update": lambda: [{"pk": side.quote.pk, "item_pk": side.quote_item.pk}],
        # Removing succeeds for the roles allowed to: each probe of one's own organization gets a fresh line.
        "sales:quote_line_remove": lambda: [
            {
                "pk": side.quote.pk,
                "item_pk": _disposable_quote_item(side.quote) if own else side.quote_item.pk,
            }
        ],
        "sales:order_detail": lambda: [{"pk": side.order.pk}],
        "sales:opportunity_activities": lambda: [{"pk": side.opportunity.pk}],
        "sales:opportunity_activity_create": lambda: [{"pk": side.opportunity.pk}],
        **{f"sales:activity_{name}": lambda: [{"pk": side.activity.pk}] for name in ACTIVITY_URLS},
        # Deleting succeeds for the roles allowed to: each probe of one's own organization deletes a fresh
        # activity of the actor's (only its owner, its author or a manager may delete one).
        "sales:activity_delete": lambda: [
            {"pk": _disposable_activity(side, actor) if own else side.activity.pk}
        ],
        "support:sla_policy_edit": lambda: [{"pk": side.sla_policy.pk}],
        "support:sla_policy_move": lambda: [{"pk": side.sla_policy.pk}],
        "support:sla_policy_delete": lambda: [
            {"pk": _disposable_sla_policy(side.org) if own else side.sla_policy.pk}
        ],
        "support:calendar_edit": lambda: [{"pk": side.sla_calendar.pk}],
        "support:calendar_delete": lambda: [
            {"pk": _disposable_sla_calendar(side.org) if own else side.sla_calendar.pk}
        ],
        "support:holiday_add": lambda: [{"pk": side.sla_calendar.pk}],
        "support:holiday_delete": lambda: [{"pk": _disposable_holiday(side.org) if own else side.holiday.pk}],
        **{
            f"support:ticket_{name}": lambda: [{"pk": side.ticket.pk}]
            for name in ("detail", "reply", "status", "priority", "assign", "unassign", "edit")
        },
        "support:attachment_download": lambda: [{"pk": side.attachment.pk}],
        "support:canned_edit": lambda: [{"pk": side.canned.pk}],
        "support:canned_delete": lambda: [{"pk": _disposable_canned(side.org) if own else side.canned.pk}],
        "survey:answer": lambda: [{"token": side.survey_token}],
        "support:workload_agent": lambda: [{"pk": side.team["support_agent"].pk}],
        "support:workload_capacity": lambda: [{"pk": side.team["support_agent"].pk}],
        **{f"support:kb_{name}": lambda: [{"pk": side.article.pk}] for name in ("detail", "edit", "publish")},
        "support:kb_delete": lambda: [{"pk": _disposable_article(side.org) if own else side.article.pk}],
        # Public pages: the organization comes from the slug, so the probes of another organization's
        # article are its slug under the actor's own organization, and its draft under its own.
        "kb:home": lambda: [{"org_slug": side.org.slug}],
        "privacy_public:form": lambda: [{"org_slug": side.org.slug}],
        **{
            name: lambda: (
                [{"org_slug": side.org.slug, "slug": side.article.slug}]
                if own
                else [
                    {"org_slug": _org_slug(actor), "slug": side.article.slug},
                    {"org_slug": side.org.slug, "slug": side.draft_article.slug},
                ]
            )
            for name in ("kb:article", "kb:vote")
        },
        # Email templates: the probe template's campaign is a draft, so archiving it succeeds for the roles
        # allowed to (and restoring undoes it); duplicating adds a "(copy)" of one's own organization's.
        **{
            f"marketing:template_{name}": lambda: [{"pk": side.marketing.template.pk}]
            for name in ("edit", "duplicate", "archive", "restore")
        },
        **{
            f"marketing:form_{name}": lambda: [{"pk": side.marketing.lead_form.pk}]
            for name in ("detail", "edit", "set_active")
        },
        # The public form: another organization's form under the actor's own organization's slug, and its
        # closed form under its own (both 404; an open form of another organization is public by design).
        "forms:form": lambda: (
            [{"org_slug": side.org.slug, "slug": side.marketing.lead_form.slug}]
            if own
            else [
                {"org_slug": _org_slug(actor), "slug": side.marketing.lead_form.slug},
                {"org_slug": side.org.slug, "slug": side.closed_lead_form.slug},
            ]
        ),
        **{
            f"marketing:campaign_{name}": lambda: [{"pk": side.campaign.pk}]
            for name in ("detail", "edit", "set_status", "actuals", "cost_add")
        },
        "marketing:campaign_funnel_panel": lambda: [{"pk": side.campaign.pk}],
        **{
            f"marketing:campaign_{name}": lambda: [{"pk": side.campaign.pk}]
            for name in ("send_panel", "send_launch", "send_pause", "send_resume", "recipients")
        },
        # Deleting succeeds for the roles allowed to: each probe of one's own organization gets a fresh one.
        "marketing:campaign_delete": lambda: [
            {"pk": _disposable_campaign(side.org) if own else side.campaign.pk}
        ],
        "marketing:campaign_cost_delete": lambda: [
            {"pk": side.campaign.pk, "cost_pk": _disposable_cost_entry(side) if own else side.cost_entry.pk}
        ],
        **{
            f"marketing:campaign_ab_{name}": lambda: [{"pk": side.campaign.pk}]
            for name in ("edit", "panel", "decide", "variant_add")
        },
        # The probe campaign's test has one variant, so deleting it is refused (a test keeps two): nothing
        # changes for any role, and another organization's variant is a 404 before that.
        **{
            f"marketing:campaign_ab_variant_{name}": lambda: [
                {"pk": side.campaign.pk, "variant_pk": side.marketing.variant.pk}
            ]
            for name in ("edit", "delete")
        },
        **{
            f"marketing:sequence_{name}": lambda: [{"pk": side.marketing.sequence.pk}]
            for name in ("detail", "edit", "status", "step_create", "enroll")
        },
        # The probe sequence has an enrollment, so deleting it is refused for every role (archive instead).
        "marketing:sequence_delete": lambda: [{"pk": side.marketing.sequence.pk}],
        **{
            f"marketing:sequence_step_{name}": lambda: [{"pk": side.marketing.step.pk}]
            for name in ("edit", "move")
        },
        # Deleting succeeds for the roles allowed to: each probe of one's own organization gets a fresh step.
        "marketing:sequence_step_delete": lambda: [
            {"pk": _disposable_sequence_step(side.marketing.sequence) if own else side.marketing.step.pk}
        ],
        **{
            f"marketing:enrollment_{name}": lambda: [{"pk": side.marketing.enrollment.pk}]
            for name in ("detail", "remove")
        },
        # Tracking links of the probe email (its template has no links, so the click answers 404).
        "tracking:open": lambda: [{"token": _tracking_token(side)}],
        "tracking:click": lambda: [{"token": _tracking_token(side, "https://example.com/")}],
        "tracking:unsubscribe": lambda: [{"token": _tracking_token(side)}],
        # Removing succeeds for the roles allowed to: each probe of one's own organization gets a fresh one.
        "marketing:suppression_remove": lambda: [
            {"pk": _disposable_suppression(side.org) if own else side.marketing.suppression.pk}
        ],
        "audit:detail": lambda: [{"pk": side.audit.pk}, {"pk": side.member_audit.pk}],
        "notifications:open": lambda: (
            [{"pk": factories.notification(actor, title=f"For {actor.email}").pk}]
            if own
            else [{"pk": side.admin_notification.pk}, {"pk": side.member_notification.pk}]
        ),
        # Privacy requests (compliance/urls/requests.py): the probe GDPR and CCPA requests of each side.
        **{
            f"compliance:request_{name}": lambda: [
                {"kind": "gdpr", "pk": side.privacy.gdpr.pk},
                {"kind": "ccpa", "pk": side.privacy.ccpa.pk},
            ]
            for name in (
                "detail",
                "progress",
                "send_code",
                "verify_code",
                "mark_verified",
                "extend",
                "reject",
                "assign",
                "link_customer",
                "process",
            )
        },
        # The public code check of a request: another organization's requests under the actor's own
        # organization's slug answer 404 (under their own slug the page is public by design).
        **{
            name: lambda: (
                [{"org_slug": side.org.slug, "pk": side.privacy.gdpr.pk}]
                if own
                else [
                    {"org_slug": _org_slug(actor), "pk": side.privacy.gdpr.pk},
                    {"org_slug": _org_slug(actor), "pk": side.privacy.ccpa.pk},
                ]
            )
            for name in ("privacy_public:verify", "privacy_public:verify_resend")
        },
        # A request's export, downloaded by staff: one's own probe request gets a stored export (so the
        # control answers 200); another organization's requests answer 404 before any file is looked at.
        "compliance:export_download": lambda: (
            [{"kind": "gdpr", "pk": _with_export(side.privacy.gdpr).pk}]
            if own
            else [{"kind": "gdpr", "pk": side.privacy.gdpr.pk}, {"kind": "ccpa", "pk": side.privacy.ccpa.pk}]
        ),
        "privacy_public:download": lambda: [{"token": _export_token(side)}],
        # Django admin's "view on site" shortcut: content type + object id, i.e. an object URL too.
        "admin:view_on_site": lambda: [
            {"content_type_id": _content_type_id("crm.user"), "object_id": side.member.pk},
            {
                "content_type_id": _content_type_id("crm.notification"),
                "object_id": side.member_notification.pk,
            },
            {"content_type_id": _content_type_id("crm.organization"), "object_id": side.org.pk},
        ],
    }
    return builders[route.key]()


def _customer_pairs(side, actor, own) -> list[dict]:
    """Two customers for the duplicates pages: two fresh ones of one's own organization, or another
    organization's probe customer paired, both ways, with a fresh one of the actor's own (the attack: merge
    someone else's customer into one's own). Fresh rows only in the actor's organization, so the other
    organization's snapshot stays as it was."""
    from crm.models import Organization

    with system_context():
        actor_org = Organization.objects.get(pk=actor.organization_id)
    fresh = factories.customer(actor_org)
    if own:
        return [{"a": fresh.pk, "b": factories.customer(actor_org).pk}]
    return [{"a": side.customer.pk, "b": fresh.pk}, {"a": fresh.pk, "b": side.customer.pk}]


def _disposable_segment(org):
    from customers.models import Segment

    with system_context():
        return Segment.objects.create(organization=org, name=f"Disposable {uuid.uuid4()}", kind="static").pk


# Activity URLs whose only parameter is the activity.
ACTIVITY_URLS = ("edit", "complete", "follow_up", "snooze")


def _disposable_activity(side, actor):
    return factories.activity(side.org, opportunity=side.opportunity, owner=actor, subject="Disposable").pk


# Quote URLs whose only parameter is the quote.
QUOTE_URLS = ("detail", "edit", "line_add", "line_form", "submit", "approve", "reject", "send", "accept")
QUOTE_URLS += ("decline", "revise", "compare", "print", "pdf")


def _disposable_quote_item(quote):
    from sales.models import QuoteItem

    with system_context():
        return QuoteItem.objects.create(
            organization_id=quote.organization_id, quote=quote, description="Disposable", unit_price=1
        ).pk


def _disposable_pipeline(org):
    from sales.services.pipelines import pipeline_create

    with system_context():
        return pipeline_create(organization=org, actor=None, name=f"Disposable {uuid.uuid4()}").pk


def _disposable_stage(org):
    from sales.models import Pipeline
    from sales.services.pipelines import stage_create

    with system_context():
        pipeline = Pipeline.objects.get(organization=org, is_default=True)
        return stage_create(pipeline=pipeline, actor=None, name=f"Disposable {uuid.uuid4()}").pk


def _disposable_sla_policy(org):
    from support.models import SlaPolicy

    with system_context():
        return SlaPolicy.objects.create(
            organization=org,
            name=f"Disposable {uuid.uuid4()}",
            position=999,
            first_response_minutes=5,
            resolution_minutes=10,
        ).pk


def _disposable_sla_calendar(org):
    from support.models import BusinessCalendar

    with system_context():
        return BusinessCalendar.objects.create(
            organization=org, name=f"Disposable {uuid.uuid4()}", hours={"1": [["09:00", "17:00"]]}
        ).pk


def _disposable_holiday(org):
    import datetime

    from support.models import BusinessCalendar, Holiday

    with system_context():
        calendar = BusinessCalendar.objects.create(
            organization=org, name=f"Disposable {uuid.uuid4()}", hours={"1": [["09:00", "17:00"]]}
        )
        return Holiday.objects.create(organization=org, calendar=calendar, date=datetime.date(2030, 1, 1)).pk


def _disposable_article(org):
    return factories.article(org, title=f"Disposable {uuid.uuid4()}").pk


def _org_slug(user) -> str:
    from crm.models import Organization

    with system_context():
        return Organization.objects.get(pk=user.organization_id).slug


def _disposable_sequence_step(sequence):
    from marketing.models import Step

    with system_context():
        last = Step.objects.filter(sequence=sequence).order_by("-position").first()
        return Step.objects.create(
            organization_id=sequence.organization_id,
            sequence=sequence,
            position=(last.position if last else 0) + 1,
            kind="wait",
            wait_days=1,
        ).pk


def _tracking_token(side, url: str = "") -> str:
    from marketing.tracking import make_token

    return make_token(side.marketing.email_send, url)


def _disposable_suppression(org):
    from marketing.models import Suppression

    with system_context():
        return Suppression.objects.create(
            organization=org, email=f"{uuid.uuid4()}@disposable.test", reason="manual"
        ).pk


def _with_export(request_obj):
    """The probe request with a stored export (a few bytes standing in for the ZIP)."""
    import datetime

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    with system_context():
        request_obj.refresh_from_db()
        if not request_obj.export_file or not default_storage.exists(request_obj.export_file):
            name = default_storage.save(
                f"privacy-exports/{request_obj.organization_id}/{uuid.uuid4()}.zip",
                ContentFile(b"PK\x03\x04"),
            )
            type(request_obj).objects.filter(pk=request_obj.pk).update(
                export_file=name, export_expires_at=timezone.now() + datetime.timedelta(days=7)
            )
            request_obj.refresh_from_db()
    return request_obj


def _export_token(side) -> str:
    from compliance.exporting import make_token

    return make_token(side.privacy.gdpr)


def _disposable_campaign(org):
    from marketing.models import Campaign

    with system_context():
        return Campaign.objects.create(organization=org, name=f"Disposable {uuid.uuid4()}").pk


def _disposable_cost_entry(side):
    from marketing.models import CostEntry

    with system_context():
        return CostEntry.objects.create(
            organization=side.org, campaign=side.campaign, description=f"Disposable {uuid.uuid4()}", amount=1
        ).pk


def _disposable_canned(org):
    from support.models import CannedResponse

    with system_context():
        return CannedResponse.objects.create(
            organization=org, title=f"Disposable {uuid.uuid4()}", body="x"
        ).pk


def _content_type_id(label: str) -> int:
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(apps.get_model(label)).pk


# Admin models holding tenant rows: how to find the org's object for that model's URLs.
ADMIN_TENANT_MODELS: dict[str, Callable[[SimpleNamespace], object]] = {
    "crm.organization": lambda side: side.org.pk,
    "crm.user": lambda side: side.member.pk,
    "crm.notification": lambda side: side.member_notification.pk,
    "crm.auditlog": lambda side: side.audit.pk,
    "customers.customer": lambda side: side.customer.pk,
    "customers.interaction": lambda side: side.interaction.pk,
    "customers.lifecyclechange": lambda side: side.lifecycle_change.pk,
    "customers.scorehistory": lambda side: side.score.pk,
    "customers.scoringmodel": lambda side: side.scoring_model.pk,
    "customers.segment": lambda side: side.segment.pk,
    "customers.segmentmember": lambda side: side.membership.pk,
    "customers.segmentevent": lambda side: side.segment_event.pk,
    "customers.importjob": lambda side: side.import_job.pk,
    "sales.pipeline": lambda side: side.pipeline.pk,
    "sales.stage": lambda side: side.stage.pk,
    "sales.opportunity": lambda side: side.opportunity.pk,
    "sales.opportunitychange": lambda side: side.opportunity_change.pk,
    "sales.salessettings": lambda side: side.sales_settings.pk,
    "support.article": lambda side: side.article.pk,
    "support.ticket": lambda side: side.ticket.pk,
    "support.slapolicy": lambda side: side.sla_policy.pk,
    "support.businesscalendar": lambda side: side.sla_calendar.pk,
    "support.cannedresponse": lambda side: side.canned.pk,
    "marketing.campaign": lambda side: side.campaign.pk,
    "marketing.campaignsegment": lambda side: side.marketing.campaign_segment.pk,
    "marketing.costentry": lambda side: side.cost_entry.pk,
    "marketing.emailtemplate": lambda side: side.marketing.template.pk,
    "marketing.variant": lambda side: side.marketing.variant.pk,
    "marketing.abtest": lambda side: side.marketing.ab_test.pk,
    "marketing.emailsend": lambda side: side.marketing.email_send.pk,
    "marketing.suppression": lambda side: side.marketing.suppression.pk,
    "marketing.sequence": lambda side: side.marketing.sequence.pk,
    "marketing.step": lambda side: side.marketing.step.pk,
    "marketing.enrollment": lambda side: side.marketing.enrollment.pk,
    "marketing.steprun": lambda side: side.marketing.step_run.pk,
    "marketing.leadform": lambda side: side.marketing.lead_form.pk,
    "marketing.formsubmission": lambda side: side.marketing.form_submission.pk,
    "compliance.gdprrequest": lambda side: side.privacy.gdpr.pk,
    "compliance.ccparequest": lambda side: side.privacy.ccpa.pk,
}


def _group(side) -> int:
    return Group.objects.get_or_create(name="Platform operators")[0].pk


def _axes_row(model_name: str):
    def make(side) -> int:
        from axes import models as axes_models

        model = getattr(axes_models, model_name)
        key = {"user_agent": "probe", "ip_address": "198.51.100.7", "username": side.member.email}
        defaults = {"http_accept": "text/html", "path_info": "/accounts/login/"}
        if model_name == "AccessAttempt":
            defaults.update(get_data="", post_data="", failures_since_start=1)
        return model.objects.get_or_create(**key, defaults=defaults)[0].pk

    return make


# Admin models with platform rows (no organization): only platform operators may touch them.
ADMIN_PLATFORM_MODELS: dict[str, Callable[[SimpleNamespace], object]] = {
    "auth.group": _group,
    "axes.accessattempt": _axes_row("AccessAttempt"),
    "axes.accesslog": _axes_row("AccessLog"),
    "axes.accessfailurelog": _axes_row("AccessFailureLog"),
}
PLATFORM_TABLES = ("auth_group", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog")


# --- The catalog ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    partitioned: bool  # the parent of a partitioned table (relkind p)
    partition: bool  # a partition (rows are reached through the parent)
    readable: bool  # the connection's role may SELECT it


TENANT_TABLES_SQL = """
SELECT c.relname, c.relkind = 'p', c.relispartition, has_table_privilege(c.oid, 'SELECT')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)
ORDER BY c.relname
"""


def tenant_tables() -> list[Table]:
    """Every table of schema public with an organization_id column (partitions included)."""
    with connection.cursor() as cursor:
        cursor.execute(TENANT_TABLES_SQL)
        return [Table(*row) for row in cursor.fetchall()]


def scalar(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def settings_on_connection() -> dict[str, str | None]:
    """The tenant settings as PostgreSQL sees them right now on this connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('app.organization_id', true), current_setting('app.user_role', true),"
            " current_setting('app.user_id', true)"
        )
        org, role, user = cursor.fetchone()
    return {"organization_id": org, "user_role": role, "user_id": user}


def no_tenant_on_connection() -> bool:
    return all(value in ("", None) for value in settings_on_connection().values())


def _digest(sql_from: str, params) -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {sql_from}",
            params,
        )
        return cursor.fetchone()


def org_snapshot(organization_id) -> dict[str, tuple[int, str]]:
    """Every row of the organization in every tenant table (full rows, hashed), its organizations row and
    the platform tables, read as the platform. Equal snapshots: nothing of theirs changed."""
    snapshot = {}
    with system_context():
        for table in tenant_tables():
            if table.readable:
                quoted = connection.ops.quote_name(table.name)
                snapshot[table.name] = _digest(f"{quoted} t WHERE organization_id = %s", [organization_id])
        snapshot["organizations"] = _digest("organizations t WHERE id = %s", [organization_id])
        for name in PLATFORM_TABLES:
            snapshot[name] = _digest(f"{connection.ops.quote_name(name)} t", [])
    return snapshot


@pytest.fixture
def committed_audit_rows_removed():
    """For tests that commit: `flush` (run between such tests) leaves the unmanaged, append-only audit log
    alone, so the rows the triggers committed would outlive the test. Only the owner can remove them, and
    only by TRUNCATE (no policy allows DELETE)."""
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


# --- Data -------------------------------------------------------------------------------------------------


def _populate(org, admin_user) -> SimpleNamespace:
    team = factories.team(org)
    member = factories.user(org, role="sales_rep", first_name="Member", job_title="Probe target")
    admin_notification = factories.notification(admin_user, title=f"Admin note of {org.slug}")
    member_notification = factories.notification(member, title=f"Member note of {org.slug}")
    with system_context():
        trail = AuditLog.objects.filter(organization_id=org.pk).order_by("occurred_at", "id")
        audit = trail.filter(table_name="organizations").first()
        member_audit = trail.filter(record_id=str(member.pk)).first()
    assert audit is not None and member_audit is not None, "the audit triggers wrote no rows"
    customer = factories.customer(
        org, first_name="Probe", last_name=f"Customer of {org.slug}", assigned_to=member, tags=["probe"]
    )
    interaction = factories.interaction(customer, interaction_type="call", outcome=f"Call of {org.slug}")
    with system_context():
        from customers import models as cm

        lifecycle_change = cm.LifecycleChange.objects.get(customer=customer)
        score = cm.ScoreHistory.objects.create(
            organization=org, customer=customer, lead_score=40, engagement_score=10, health_score=50
        )
        scoring_model = cm.ScoringModel.objects.create(organization=org)
        segment = cm.Segment.objects.create(
            organization=org, name=f"Probe segment {org.slug}", kind=cm.Segment.Kind.STATIC
        )
        membership = cm.SegmentMember.objects.create(organization=org, segment=segment, customer=customer)
        segment_event = cm.SegmentEvent.objects.create(
            organization=org, segment=segment, customer=customer, kind=cm.SegmentEvent.Kind.ADDED
        )
        import_job = cm.ImportJob.objects.create(
            organization=org, kind="customers", file_name="probe.csv", file_path="probe.csv"
        )
    pipeline = factories.pipeline(org)
    stage = factories.stage(org, "Closed won")
    opportunity = factories.opportunity(
        org, name=f"Probe deal of {org.slug}", customer=customer, stage="Prospecting", assigned_to=member
    )
    with system_context():
        from sales import models as sm
        from sales.services.opportunities import opportunity_update
        from sales.services.pipelines import sales_settings_for

        opportunity_update(
            opportunity=opportunity,
            actor=None,
            stage=sm.Stage.objects.get(pipeline=pipeline, name="Proposal"),
        )
        opportunity_change = sm.OpportunityChange.objects.filter(opportunity=opportunity).first()
        sales_settings = sales_settings_for(org.pk)
    activity = factories.activity(
        org, opportunity=opportunity, kind="call", owner=member, subject=f"Probe activity of {org.slug}"
    )
    product = factories.product(
        org, sku=f"PROBE-{org.slug}", name=f"Probe product of {org.slug}", currency=opportunity.currency
    )
    quote = factories.quote(
        org, opportunity=opportunity, title=f"Probe quote of {org.slug}", lines=[{"product": product}]
    )
    order = factories.order(
        org,
        customer=customer,
        external_reference=f"PROBE-{org.slug}",
        lines=[{"quantity": 1, "unit_price": 5}],
    )
    with system_context():
        quote_item = sm.QuoteItem.objects.get(quote=quote)
    with system_context():
        import datetime

        from support import sla
        from support.models import BusinessCalendar, Holiday

        sla_policy = sla.ensure_default_policies(org)[1]  # billing: on the business-hours calendar
        sla_calendar = BusinessCalendar.objects.get(pk=sla_policy.calendar_id)
        holiday = Holiday.objects.create(
            organization=org, calendar=sla_calendar, date=datetime.date(2026, 12, 25), name="Probe holiday"
        )
    ticket = factories.ticket(org, customer=customer, subject=f"Probe ticket of {org.slug}")
    with system_context():
        from django.core.files.uploadedfile import SimpleUploadedFile

        from support.models import CannedResponse, TicketAttachment
        from support.services.tickets import ticket_note

        note = ticket_note(
            ticket=ticket,
            actor=admin_user,
            body=f"Probe note of {org.slug}",
            attachments=[SimpleUploadedFile("probe.txt", f"Probe file of {org.slug}".encode())],
        )
        attachment = TicketAttachment.objects.get(message=note)
        canned = CannedResponse.objects.create(
            organization=org, title=f"Probe canned of {org.slug}", body="Hi"
        )
    article = factories.article(org, title=f"Probe article of {org.slug}", category="Probe")
    draft_article = factories.article(org, title=f"Probe draft of {org.slug}", status="draft")
    with system_context():
        from django.utils import timezone

        from support.models import Survey
        from support.surveys import MAX_AGE, make_token

        survey = Survey.objects.create(
            organization=org, kind="nps", customer=customer, expires_at=timezone.now() + MAX_AGE
        )
        survey_token = make_token(survey)
    campaign, cost_entry, marketing = _populate_marketing(org, customer, segment)
    with system_context():
        from marketing.models import LeadForm

        # A form that accepts no submissions: its public page must be 404 like a missing one.
        closed_lead_form = LeadForm.objects.create(
            organization=org,
            campaign=campaign,
            name="Closed probe form",
            slug=f"closed-probe-form-{org.slug}",
            title="Closed",
            is_active=False,
        )
    return SimpleNamespace(
        campaign=campaign,
        cost_entry=cost_entry,
        marketing=marketing,
        closed_lead_form=closed_lead_form,
        ticket=ticket,
        attachment=attachment,
        canned=canned,
        survey=survey,
        survey_token=survey_token,
        article=article,
        draft_article=draft_article,
        sla_policy=sla_policy,
        sla_calendar=sla_calendar,
        holiday=holiday,
        pipeline=pipeline,
        stage=stage,
        opportunity=opportunity,
        opportunity_change=opportunity_change,
        activity=activity,
        sales_settings=sales_settings,
        product=product,
        quote=quote,
        quote_item=quote_item,
        order=order,
        score=score,
        scoring_model=scoring_model,
        segment=segment,
        membership=membership,
        segment_event=segment_event,
        import_job=import_job,
        customer=customer,
        interaction=interaction,
        lifecycle_change=lifecycle_change,
        org=org,
        admin=admin_user,
        team=team,
        member=member,
        admin_notification=admin_notification,
        member_notification=member_notification,
        audit=audit,
        member_audit=member_audit,
        emails={admin_user.email, member.email, *(u.email for u in team.values())},
        privacy=_populate_privacy(org, customer),
    )


def _populate_privacy(org, customer) -> SimpleNamespace:
    """A GDPR and a CCPA request of the probe customer (through the intake service)."""
    from compliance.services.requests import request_create

    with system_context():
        fields = {"organization": org, "requester_name": "Probe", "customer": customer}
        gdpr = request_create(
            kind="gdpr", request_type="access", requester_email=f"probe@{org.slug}.example", **fields
        )
        ccpa = request_create(
            kind="ccpa",
            request_type="delete",
            requester_email=f"probe@{org.slug}.example",
            resident_state="CA",
            **fields,
        )
    return SimpleNamespace(gdpr=gdpr, ccpa=ccpa)


def _populate_marketing(org, customer, segment) -> tuple:
    """An email campaign (template, segment, a cost, an A/B test, one email sent) and a row in every other
    marketing table: the campaign pages' probes and the admin's marketing models."""
    import datetime

    from django.utils import timezone

    from marketing import models as mm

    with system_context():
        template = mm.EmailTemplate.objects.create(
            organization=org, name=f"Probe template of {org.slug}", subject="Hi", html_body="<p>Hi</p>"
        )
        campaign = mm.Campaign.objects.create(
            organization=org,
            name=f"Probe campaign of {org.slug}",
            channels=["email", "ads"],
            template=template,
            budget=100,
            send_at=timezone.now().replace(microsecond=0),
        )
        campaign_segment = mm.CampaignSegment.objects.create(
            organization=org, campaign=campaign, segment=segment
        )
        cost_entry = mm.CostEntry.objects.create(
            organization=org, campaign=campaign, description=f"Probe cost of {org.slug}", amount=10
        )
        variant = mm.Variant.objects.create(organization=org, campaign=campaign, label="A")
        ab_test = mm.ABTest.objects.create(organization=org, campaign=campaign, default_variant=variant)
        # The email of a campaign whose send is over, so the probe campaign above stays launchable.
        sent_at = timezone.now().replace(microsecond=0)
        sent_campaign = mm.Campaign.objects.create(
            organization=org,
            name=f"Probe sent campaign of {org.slug}",
            channels=["email"],
            template=template,
            send_at=sent_at,
            send_state="done",
            send_started_at=sent_at,
            send_finished_at=sent_at,
            recipients_total=1,
            sent_count=1,
        )
        email_send = mm.EmailSend.objects.create(
            organization=org,
            campaign=sent_campaign,
            customer=customer,
            blast_at=sent_at,
            scheduled_send_time=sent_at,
            email=f"probe@{org.slug}.test",
            status="sent",
            sent_at=sent_at,
        )
        suppression = mm.Suppression.objects.create(
            organization=org, email=f"gone@{org.slug}.test", reason="manual"
        )
        sequence = mm.Sequence.objects.create(
            organization=org, name=f"Probe sequence of {org.slug}", campaign=campaign
        )
        step = mm.Step.objects.create(
            organization=org, sequence=sequence, position=1, kind="wait", wait_days=1
        )
        enrollment = mm.Enrollment.objects.create(organization=org, sequence=sequence, customer=customer)
        step_run = mm.StepRun.objects.create(
            organization=org,
            enrollment=enrollment,
            step=step,
            due_at=timezone.now() - datetime.timedelta(days=1),
            outcome="waited",
        )
        lead_form = mm.LeadForm.objects.create(
            organization=org,
            campaign=campaign,
            name="Probe admin form",
            slug=f"probe-admin-{org.slug}",
            title="Hi",
        )
        form_submission = mm.FormSubmission.objects.create(
            organization=org, form=lead_form, customer=customer
        )
    marketing = SimpleNamespace(
        template=template,
        campaign_segment=campaign_segment,
        variant=variant,
        ab_test=ab_test,
        email_send=email_send,
        suppression=suppression,
        sequence=sequence,
        step=step,
        enrollment=enrollment,
        step_run=step_run,
        lead_form=lead_form,
        form_submission=form_submission,
    )
    return campaign, cost_entry, marketing


@pytest.fixture
def tenants(org_a, org_b, admin_a, admin_b, superuser):
    """Two organizations with rows in every platform table: a team (one user per role), an extra member,
    notifications, and the audit rows the triggers wrote; plus a platform operator (no organization)."""
    return SimpleNamespace(a=_populate(org_a, admin_a), b=_populate(org_b, admin_b), superuser=superuser)


@pytest.fixture
def signed_in(login):
    """`signed_in(user)` -> a new test client signed in as `user`."""
    return lambda user, **options: login(user, on=Client(**options))
