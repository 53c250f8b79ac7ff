"""Every read of the platform app beyond a plain `get`: scoped to the actor's organization and role."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from crm.models import AuditLog, Notification, Organization, User
from crm.permissions import Capability, Role, has_capability
from crm.search import SearchResult


def _organization_id(actor: User):
    if not actor.organization_id:
        raise Http404("Platform operators manage organizations in the admin site.")
    return actor.organization_id


def organization_of(*, actor: User) -> Organization:
    """The actor's organization; platform operators (no organization) get 404 on org pages."""
    _organization_id(actor)
    return actor.organization


def user_list(*, actor: User) -> QuerySet[User]:
    """The actor's organization's users (application wall; RLS is the second)."""
    return User.objects.filter(organization_id=_organization_id(actor))


def user_get(*, actor: User, pk) -> User:
    return get_object_or_404(user_list(actor=actor), pk=pk)


@dataclass(frozen=True)
class SeatUsage:
    used: int
    limit: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 100

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)


def seat_usage(*, organization: Organization) -> SeatUsage:
    used = User.objects.filter(organization_id=organization.pk, is_active=True).count()
    return SeatUsage(used=used, limit=organization.seat_limit)


def team_by_role(*, actor: User) -> list[dict]:
    """Active users per role, every role listed (zero included), in the matrix's order. One query."""
    counts = dict(
        user_list(actor=actor).filter(is_active=True).values_list("role").annotate(n=Count("id")).order_by()
    )
    top = max(counts.values(), default=0)
    return [
        {
            "role": value,
            "label": label,
            "count": counts.get(value, 0),
            "percent": round(100 * counts.get(value, 0) / top) if top else 0,
        }
        for value, label in Role.choices
    ]


def audited_tables() -> list[str]:
    """The tables that carry the audit trigger, from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'crm_audit' AND NOT t.tgisinternal ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def audit_log_list(*, actor: User) -> QuerySet[AuditLog]:
    if not has_capability(actor, Capability.VIEW_AUDIT_LOG):
        return AuditLog.objects.none()
    return AuditLog.objects.filter(organization_id=_organization_id(actor))


def audit_entry_get(*, actor: User, pk) -> AuditLog:
    return get_object_or_404(audit_log_list(actor=actor), pk=pk)


def users_by_id(*, actor: User, ids) -> dict:
    """Users of the actor's organization by id, in one query (for labelling audit rows)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {u.pk: u for u in user_list(actor=actor).filter(pk__in=ids)}


def recent_activity(*, actor: User, limit: int = 8) -> list[dict]:
    """The latest audit events of the organization with who did them: two queries."""
    entries = list(audit_log_list(actor=actor)[:limit])
    people = users_by_id(actor=actor, ids=[e.user_id for e in entries])
    return [{"entry": e, "user": people.get(e.user_id)} for e in entries]


def notifications_for(*, user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(organization_id=user.organization_id, recipient=user)


def unread_notification_count(*, user: User) -> int:
    if not user.organization_id:
        return 0
    return notifications_for(user=user).filter(read_at__isnull=True).count()


def notification_get(*, user: User, pk) -> Notification:
    return get_object_or_404(notifications_for(user=user), pk=pk)


def dashboard(*, actor: User) -> dict:
    """Everything the home page shows, in a fixed number of queries."""
    data = {"as_of": timezone.now(), "organization": None}
    if not actor.organization_id:
        return data
    organization = actor.organization
    data.update(
        organization=organization,
        seats=seat_usage(organization=organization),
        team=team_by_role(actor=actor),
        notifications=list(notifications_for(user=actor)[:5]),
        unread=unread_notification_count(user=actor),
    )
    if has_capability(actor, Capability.VIEW_AUDIT_LOG):
        data["activity"] = recent_activity(actor=actor)
    return data


def search_users(*, user: User, query: str, limit: int) -> list[SearchResult]:
    """Teammates by name, email or job title (the users list, filtered, is where a result leads)."""
    from django.urls import reverse
    from django.utils.http import urlencode

    matches = user_list(actor=user).filter(
        Q(first_name__icontains=query)
        | Q(last_name__icontains=query)
        | Q(email__icontains=query)
        | Q(job_title__icontains=query)
    )[:limit]
    can_manage = has_capability(user, Capability.MANAGE_USERS)

    def url(u: User) -> str:
        if can_manage:
            return reverse("users:edit", args=[u.pk])
        return f"{reverse('users:list')}?{urlencode({'q': u.email})}"

    return [
        SearchResult(
            kind="People",
            title=str(u),
            subtitle=f"{u.email} · {u.get_role_display()}",
            url=url(u),
            icon="person",
        )
        for u in matches
    ]
