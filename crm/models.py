"""Platform models: organizations (the tenants), users, the audit trail and in-app notifications."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.permissions import Role
from crm.tenancy import TenantManager, TenantQuerySet

TIME_ZONE_CHOICES = [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def validate_time_zone(value: str) -> None:
    """An IANA time zone name (the forms offer the list; the model only checks)."""
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


CURRENCY_CHOICES = [
    ("USD", "USD — US dollar"),
    ("EUR", "EUR — Euro"),
    ("GBP", "GBP — Pound sterling"),
    ("CHF", "CHF — Swiss franc"),
    ("CAD", "CAD — Canadian dollar"),
    ("AUD", "AUD — Australian dollar"),
    ("JPY", "JPY — Japanese yen"),
    ("INR", "INR — Indian rupee"),
    ("BRL", "BRL — Brazilian real"),
    ("SEK", "SEK — Swedish krona"),
]


class Organization(models.Model):
    """A tenant. Every tenant table carries its id; row-level security keys on it."""

    class Plan(models.TextChoices):
        FREE = "free", _("Free")
        STARTER = "starter", _("Starter")
        PROFESSIONAL = "professional", _("Professional")
        ENTERPRISE = "enterprise", _("Enterprise")

    class Status(models.TextChoices):
        TRIAL = "trial", _("Trial")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=63, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        choices=CURRENCY_CHOICES,
        default="USD",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 code."))],
    )
    plan = models.CharField(_("subscription plan"), max_length=20, choices=Plan.choices, default=Plan.STARTER)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    seat_limit = models.PositiveIntegerField(_("seat limit"), default=10, validators=[MinValueValidator(1)])
    renewal_date = models.DateField(_("renewal date"), null=True, blank=True)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        db_table = "organizations"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seat_limit__gte=1), name="organizations_seats_ck")
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager.from_queryset(TenantQuerySet)):
    use_in_migrations = False

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_superuser=True, organization=None, role="")
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class Department(models.TextChoices):
    SALES = "sales", _("Sales")
    MARKETING = "marketing", _("Marketing")
    SUPPORT = "support", _("Support")
    BILLING = "billing", _("Billing")
    TECHNICAL = "technical", _("Technical")
    ACCOUNT = "account", _("Account management")
    PRODUCT = "product", _("Product")


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Org users belong to exactly one organization; platform operators
    (superusers, `system_admin`) to none."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    email = models.EmailField(_("email"), max_length=254)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, blank=True)
    department = models.CharField(_("department"), max_length=32, choices=Department.choices, blank=True)
    job_title = models.CharField(_("job title"), max_length=120, blank=True)
    # Plain text, appended to marketing emails sent on the user's behalf (the `owner.signature` merge field).
    email_signature = models.TextField(_("email signature"), blank=True, max_length=1000)
    is_active = models.BooleanField(_("active"), default=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[validate_time_zone])
    preferences = models.JSONField(_("preferences"), default=dict, blank=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # The last deactivation (kept after reactivation: it is part of the session hash).
    deactivated_at = models.DateTimeField(_("last deactivated"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        ordering = ["first_name", "last_name", "email"]
        constraints = [
            # Email is the login, so it is unique across the platform, whatever its case.
            models.UniqueConstraint(Lower("email"), name="users_email_ci_key"),
            # Target of the composite (organization_id, user_id) foreign keys from other tenant tables.
            models.UniqueConstraint(fields=["organization", "id"], name="users_org_id_key"),
            models.CheckConstraint(
                condition=models.Q(is_superuser=True)
                | (models.Q(organization__isnull=False) & ~models.Q(role="")),
                name="users_org_role_ck",
            ),
        ]
        indexes = [models.Index(fields=["organization", "role", "is_active"], name="users_org_role_idx")]

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    @property
    def is_staff(self) -> bool:
        """Django admin: platform operators, and org admins (who see only their organization there)."""
        return self.is_active and (self.is_superuser or self.role == Role.ADMIN)

    @property
    def status(self) -> str:
        return "active" if self.is_active else "inactive"

    def _get_session_auth_hash(self, secret=None) -> str:
        """Sessions are bound to the password *and* to the last deactivation: deactivating a user
        invalidates every session they had, and reactivating them revives none."""
        from django.utils.crypto import salted_hmac

        stamp = self.deactivated_at.isoformat() if self.deactivated_at else ""
        return salted_hmac(
            "crm.models.User.session_auth_hash", f"{self.password}|{stamp}", secret=secret, algorithm="sha256"
        ).hexdigest()

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name or self.email

    @property
    def initials(self) -> str:
        letters = (self.first_name[:1] + self.last_name[:1]) or self.email[:2]
        return letters.upper()

    @property
    def role_label(self) -> str:
        return _("Platform operator") if self.is_superuser else self.get_role_display()


class AuditLog(models.Model):
    """One row per change to an audited table, written by the `crm_audit_trigger()` PostgreSQL trigger.

    The table is range-partitioned by month on `occurred_at` (its real primary key is (id, occurred_at)),
    created by migration SQL rather than by Django, and the app role may only SELECT and INSERT it.
    """

    class Operation(models.TextChoices):
        INSERT = "INSERT", _("Created")
        UPDATE = "UPDATE", _("Changed")
        DELETE = "DELETE", _("Deleted")

    id = models.UUIDField(primary_key=True)
    occurred_at = models.DateTimeField()
    organization_id = models.UUIDField(null=True)
    table_name = models.CharField(max_length=63)
    record_id = models.CharField(max_length=64)
    operation = models.CharField(max_length=6, choices=Operation.choices)
    old_values = models.JSONField(null=True)
    new_values = models.JSONField(null=True)
    changed_fields = models.JSONField(null=True)
    user_id = models.UUIDField(null=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True)
    user_agent = models.TextField(blank=True)
    sensitivity = models.CharField(max_length=16)

    objects = TenantManager()

    # How the trail names a row of each audited table; domain apps add theirs in AppConfig.ready().
    NOUNS: dict = {"users": _("user"), "organizations": _("organization")}
    LABEL_FIELDS = ("name", "subject", "title", "customer_number", "email")

    class Meta:
        managed = False
        db_table = "crm_audit_log"
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.table_name} {self.record_id}"

    @property
    def noun(self) -> str:
        return str(self.NOUNS.get(self.table_name, self.table_name))

    @property
    def record_label(self) -> str:
        """A human name for the row, from the values the trail kept (it never loads the row itself)."""
        values = {**(self.old_values or {}), **(self.new_values or {})}
        full_name = f"{values.get('first_name') or ''} {values.get('last_name') or ''}".strip()
        if full_name:
            return full_name
        for field in self.LABEL_FIELDS:
            if values.get(field):
                return str(values[field])
        return self.record_id[:8]


class Notification(models.Model):
    """An in-app notification (the bell). Email copies, where wanted, are sent by the service that creates it."""

    class Level(models.TextChoices):
        INFO = "info", _("Info")
        SUCCESS = "success", _("Success")
        WARNING = "warning", _("Warning")
        DANGER = "danger", _("Urgent")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "recipient", "-created_at"],
                name="notifications_unread_idx",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(
                fields=["organization", "recipient", "-created_at", "-id"], name="notifications_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.title
