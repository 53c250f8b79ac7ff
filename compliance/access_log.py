"""The data access log: who viewed or exported whose personal data, and when (`data_access_log`).

`record_access` is the one way rows are written: the customer 360 page and its JSON, every list export and
every download of a privacy request's export call it, inside the request's transaction (so a failed request
leaves no row behind and a logged one cannot be undone: the app role may only insert and read).
`access_log_list` and `AccessLogFilter` are the review page's reads (VIEW_ACCESS_LOG): keyset pages over the
(organization_id, occurred_at DESC, id DESC) index, the people and customers of a page in one query each.

A row says *what* was read (the list and its filters, the request number), never the personal data itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

import django_filters
from django import forms
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from compliance.models import AccessAction, AccessLogEntry
from crm import tenancy
from crm.models import User
from crm.permissions import Capability, has_capability
from customers.models import Customer

DESCRIPTION_MAX = 500
VIEWED_BY_LIMIT = 5
EXPORT_COUNT_CAP = 50_000
_CUSTOMER_NUMBER = re.compile(r"^\s*(?:C-?)?0*(\d{1,9})\s*$", re.IGNORECASE)


@transaction.atomic
def record_access(
    *,
    request_or_none,
    user: User | None,
    action: AccessAction | str,
    customer: Customer | None = None,
    customer_id=None,
    organization_id=None,
    description: str = "",
    row_count: int | None = None,
) -> AccessLogEntry:
    """Append one row to the access log.

    The organization is the one given, else the user's, else the customer's, else the current tenant
    context's (a data subject downloading through a signed link has no user, and an erased request may have
    lost its customer). The request id and client address come from the HTTP request when there is one.
    """
    organization_id = (
        organization_id
        or getattr(user, "organization_id", None)
        or getattr(customer, "organization_id", None)
        or tenancy.current_organization_id()
    )
    if organization_id is None:
        raise tenancy.TenantContextError("An access log row needs an organization.")
    return AccessLogEntry.objects.create(
        organization_id=organization_id,
        user=user if user is not None and user.is_authenticated else None,
        action=AccessAction(action),
        customer_id=customer.pk if customer is not None else customer_id,
        description=description[:DESCRIPTION_MAX],
        row_count=row_count,
        request_id=(getattr(request_or_none, "request_id", "") or "")[:64],
        ip_address=getattr(request_or_none, "client_ip", None) or None,
    )


def record_audit_entry_view(sender, *, request, entry, **kwargs) -> None:
    """Receiver of crm.signals.audit_entry_viewed: opening an audit entry shows old and new values, which
    may be a customer's personal data. Logged in the entry's organization (a platform operator has none of
    their own); entries of platform tables (no organization) hold no customer data and are not logged."""
    if entry.organization_id is None:
        return
    record_access(
        request_or_none=request,
        user=request.user,
        action=AccessAction.VIEW_AUDIT_ENTRY,
        organization_id=entry.organization_id,
        customer_id=entry.record_id if entry.table_name == "customers" else None,
        description=f"{entry.table_name} {entry.record_id} ({entry.operation})",
    )


def record_list_export(*, request, list_name: str, queryset: QuerySet) -> AccessLogEntry:
    """Log a list export (the CSV views call this once, before streaming): the list, its filters, and how
    many rows it holds when counting them stays cheap (at most EXPORT_COUNT_CAP rows are counted; beyond
    that the count is left empty rather than scanning the whole table)."""
    n = queryset.order_by()[: EXPORT_COUNT_CAP + 1].count()
    filters = describe_filters(request.GET)
    return record_access(
        request_or_none=request,
        user=request.user,
        action=AccessAction.EXPORT_LIST,
        description=f"{list_name} export ({filters or 'no filters'})",
        row_count=n if n <= EXPORT_COUNT_CAP else None,
    )


def describe_filters(params, *, ignore: Iterable[str] = ("cursor", "sort", "page")) -> str:
    """A list export's filters as a line for the log: `stage=lead, tag=vip` (empty values left out)."""
    ignored = set(ignore)
    parts = []
    for key in sorted(params.keys()):
        if key in ignored:
            continue
        values = [value for value in params.getlist(key) if value not in ("", None)]
        if values:
            parts.append(f"{key}={'|'.join(values)}")
    return ", ".join(parts)


# --- Reading ----------------------------------------------------------------------------------------------


def access_log_list(*, actor: User) -> QuerySet[AccessLogEntry]:
    """The actor's organization's access log (empty without VIEW_ACCESS_LOG)."""
    if not has_capability(actor, Capability.VIEW_ACCESS_LOG) or not actor.organization_id:
        return AccessLogEntry.objects.none()
    return AccessLogEntry.objects.filter(organization_id=actor.organization_id)


def customer_lookup(value: str) -> dict | None:
    """What the customer filter accepts: a customer number as shown (`C-000123`, `123`) or a customer id."""
    value = (value or "").strip()
    match = _CUSTOMER_NUMBER.match(value)
    if match:
        return {"number": int(match.group(1))}
    try:
        return {"pk": uuid.UUID(value)}
    except ValueError:
        return None


class AccessLogFilter(django_filters.FilterSet):
    user = django_filters.ChoiceFilter(field_name="user_id", label=_("User"), empty_label=_("Anyone"))
    action = django_filters.ChoiceFilter(choices=AccessAction.choices, empty_label=_("Any access"))
    customer = django_filters.CharFilter(
        label=_("Customer"),
        method="filter_customer",
        widget=forms.TextInput(attrs={"placeholder": _("C-000123")}),
    )
    since = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__gte",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__lte",
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AccessLogEntry
        fields = ["user", "action", "customer", "since", "until"]

    def __init__(self, *args, users=(), organization_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization_id = organization_id
        self.filters["user"].extra["choices"] = [(str(u.pk), str(u)) for u in users]

    def filter_customer(self, queryset, name, value):
        lookup = customer_lookup(value)
        if lookup is None:
            return queryset.none()
        # A subquery, not a second round trip; scoped to the organization like everything else.
        customers = Customer.objects.filter(organization_id=self.organization_id, **lookup).values("pk")
        return queryset.filter(customer_id__in=customers)


def customers_by_id(*, organization_id, ids) -> dict:
    """The customers named on a page of the log, in one query (a customer may since have been erased: the
    row then shows the pseudonym, and a deleted one shows its id)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {
        c.pk: c
        for c in Customer.objects.filter(organization_id=organization_id, pk__in=ids).only(
            "id", "organization_id", "number", "first_name", "last_name", "company_name", "email"
        )
    }


def viewed_by_panel(*, customer: Customer, actor: User) -> dict:
    """The customer 360 panel "Viewed by": the latest accesses to this customer's data (one query)."""
    entries = (
        access_log_list(actor=actor)
        .filter(customer_id=customer.pk)
        .select_related("user")
        .order_by("-occurred_at", "-id")[:VIEWED_BY_LIMIT]
    )
    return {
        "entries": [
            {
                "occurred_at": entry.occurred_at.isoformat(),
                "user": str(entry.user) if entry.user_id and entry.user else "",
                "action": entry.action,
                "action_label": str(entry.get_action_display()),
                "description": entry.description,
            }
            for entry in entries
        ]
    }
