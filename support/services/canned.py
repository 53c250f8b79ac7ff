"""Canned responses (macros): the organization's reusable reply texts, and their merge fields.

Editing needs MANAGE_SUPPORT_SETTINGS; every agent uses them from the ticket page. Merge fields are a fixed
whitelist (`MERGE_FIELDS`) replaced by plain string substitution: no template engine ever sees the text, so a
canned response cannot reach anything but the values listed here, and an unknown `{{...}}` stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from support.models import CannedResponse, Ticket


def _require(actor: User | None) -> None:
    if actor is not None and not has_capability(actor, Capability.MANAGE_SUPPORT_SETTINGS):
        raise PermissionDenied


# name -> (what it is, for the help text; how to read it from the ticket and the agent)
MERGE_FIELDS: dict[str, tuple[str, Callable[[Ticket, User | None], str]]] = {
    "customer.first_name": (
        gettext_lazy("the customer's first name"),
        lambda t, a: t.customer.first_name,
    ),
    "customer.last_name": (gettext_lazy("the customer's last name"), lambda t, a: t.customer.last_name),
    "customer.name": (gettext_lazy("the customer's full name"), lambda t, a: t.customer.display_name),
    "customer.company": (gettext_lazy("the customer's company"), lambda t, a: t.customer.company_name),
    "agent.first_name": (gettext_lazy("your first name"), lambda t, a: a.first_name if a else ""),
    "agent.name": (gettext_lazy("your full name"), lambda t, a: a.get_full_name() if a else ""),
    "ticket.number": (gettext_lazy("the ticket number (T-000042)"), lambda t, a: t.ticket_number),
    "ticket.subject": (gettext_lazy("the ticket's subject"), lambda t, a: t.subject),
}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def canned_render(body: str, *, ticket: Ticket, agent: User | None) -> str:
    """`body` with the whitelisted merge fields filled in for this ticket and agent. Plain text in, plain
    text out: the result is escaped wherever it is shown, like anything an agent types."""

    def value(match: re.Match) -> str:
        field = MERGE_FIELDS.get(match.group(1))
        if field is None:
            return match.group(0)
        return field[1](ticket, agent) or ""

    return _PLACEHOLDER.sub(value, body)


def _check(canned: CannedResponse) -> None:
    canned.title = canned.title.strip()
    canned.full_clean(exclude=["organization", "created_by"], validate_unique=False)
    clash = CannedResponse.objects.filter(
        organization_id=canned.organization_id, title__iexact=canned.title
    ).exclude(pk=canned.pk)
    if clash.exists():
        raise ValidationError({"title": _("Another canned response already has this title.")})


@transaction.atomic
def canned_create(*, organization: Organization, actor: User | None, title: str, body: str) -> CannedResponse:
    _require(actor)
    canned = CannedResponse(organization=organization, title=title, body=body, created_by=actor)
    _check(canned)
    canned.save(force_insert=True)
    return canned


@transaction.atomic
def canned_update(*, canned: CannedResponse, actor: User | None, title: str, body: str) -> CannedResponse:
    _require(actor)
    canned.title, canned.body = title, body
    _check(canned)
    canned.save()
    return canned


@transaction.atomic
def canned_delete(*, canned: CannedResponse, actor: User | None) -> None:
    _require(actor)
    CannedResponse.objects.filter(organization_id=canned.organization_id, pk=canned.pk).delete()
