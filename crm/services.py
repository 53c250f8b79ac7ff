"""Every write of the platform app: organizations, users, notifications, partitions.

Keyword-only arguments, the acting user passed in, one transaction each. The audit trail is written by the
database triggers, so these functions only have to do the change itself.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.db.login import user_id_for_email
from crm.db.partitions import ensure_month_partitions, partitioned_tables
from crm.models import Notification, Organization, User
from crm.permissions import Capability, Role, has_capability
from crm.signals import user_deactivated


class SeatLimitReached(ValidationError):
    """Adding or reactivating a user would exceed the organization's seat limit."""


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def _lock_seats(organization: Organization, *, adding: int = 1) -> None:
    """Serialize seat changes per organization (row lock) and refuse to go past the limit.

    Two admins adding the last seat at the same moment: the second waits for the first's commit, then
    counts again and is refused.
    """
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    active = User.objects.filter(organization_id=org.pk, is_active=True).count()
    if active + adding > org.seat_limit:
        raise SeatLimitReached(
            _("All %(limit)d seats of your plan are in use. Deactivate a user or raise the seat limit.")
            % {"limit": org.seat_limit},
            code="seat_limit",
        )


@transaction.atomic
def organization_update(*, organization: Organization, actor: User | None, **fields) -> Organization:
    """Change an organization's own settings (name, time zone, currency, record visibility)."""
    _require(actor, Capability.MANAGE_ORGANIZATION)
    allowed = {"name", "time_zone", "currency", "settings"}
    if actor is None or actor.is_superuser:
        allowed |= {"plan", "status", "seat_limit", "renewal_date", "slug"}
    unknown = set(fields) - allowed
    if unknown:
        raise PermissionDenied(f"Not editable here: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(organization, name, value)
    organization.full_clean()
    organization.save()
    return organization


@transaction.atomic
def user_create(
    *,
    organization: Organization,
    actor: User | None,
    email: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    department: str = "",
    job_title: str = "",
    password: str | None = None,
    time_zone: str = "",
) -> User:
    """Add a user to `organization`, within its seat limit. Without a password the account cannot sign in
    until the user sets one through the password-reset link."""
    _require(actor, Capability.MANAGE_USERS)
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    email = email.strip().lower()
    # Email is the login, unique across organizations, which RLS hides: ask the login door.
    if user_id_for_email(email):
        raise ValidationError({"email": _("An account with this email already exists.")})
    _lock_seats(organization)
    user = User(
        organization=organization,
        email=email,
        role=role,
        first_name=first_name,
        last_name=last_name,
        department=department,
        job_title=job_title,
        time_zone=time_zone,
    )
    if password:
        validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    return user


def user_invite_send(*, user: User, base_url: str) -> None:
    """After commit, email `user` a link to set their password (the password-reset token, 3 days valid)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    link = base_url.rstrip("/") + reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {"user": user, "link": link, "organization": user.organization}
    subject = render_to_string("registration/invite_subject.txt", context).strip()
    body = render_to_string("registration/invite_email.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))


def _stored_role(user: User) -> str:
    return User.objects.filter(pk=user.pk).values_list("role", flat=True).first() or ""


@transaction.atomic
def user_update(*, user: User, actor: User | None, **fields) -> User:
    """Change a user's profile, role or department (role and department only by user managers)."""
    managed = {"role", "department", "job_title", "first_name", "last_name", "time_zone"}
    own = {"first_name", "last_name", "time_zone", "preferences", "job_title", "email_signature"}
    unknown = set(fields) - managed - own
    if unknown:
        raise PermissionDenied(f"Not editable: {', '.join(sorted(unknown))}")
    if actor is not None and not (actor.pk == user.pk and set(fields) <= own):
        _require(actor, Capability.MANAGE_USERS)
        # Compare with the stored role: a ModelForm has already copied the posted role onto `user`.
        if actor.pk == user.pk and "role" in fields and fields["role"] != _stored_role(user):
            raise ValidationError({"role": _("You cannot change your own role; ask another admin.")})
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None) -> User:
    """Deactivate a user: they cannot sign in, and their open sessions end at once (each request reloads
    the user and refuses an inactive one; the session hash changes too, so reactivation revives none)."""
    _require(actor, Capability.MANAGE_USERS)
    if actor is not None and actor.pk == user.pk:
        raise ValidationError(_("You cannot deactivate your own account."))
    if user.is_active:
        user.is_active = False
        user.deactivated_at = timezone.now()
        user.save(update_fields=["is_active", "deactivated_at"])
        user_deactivated.send(sender=User, user=user, actor=actor)
    return user


@transaction.atomic
def user_reactivate(*, user: User, actor: User | None) -> User:
    _require(actor, Capability.MANAGE_USERS)
    if not user.is_active:
        _lock_seats(user.organization)
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def notification_create(
    *, recipient: User, title: str, body: str = "", url: str = "", level: str = Notification.Level.INFO
) -> Notification:
    return Notification.objects.create(
        organization_id=recipient.organization_id,
        recipient=recipient,
        title=title,
        body=body,
        url=url,
        level=level,
    )


@transaction.atomic
def notifications_mark_read(*, recipient: User, ids: list | None = None) -> int:
    """Mark the recipient's notifications read (all unread ones when `ids` is None)."""
    queryset = Notification.objects.filter(
        organization_id=recipient.organization_id, recipient=recipient, read_at__isnull=True
    )
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return queryset.update(read_at=timezone.now())


def partitions_ensure(*, months_ahead: int | None = None) -> dict[str, int]:
    """Create the coming months' partitions of every partitioned table; returns {table: created}."""
    ahead = settings.CRM_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    return {table: ensure_month_partitions(table, months_ahead=ahead) for table in partitioned_tables()}
