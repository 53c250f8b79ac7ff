"""Support: tickets with their message threads and event history, SLA policies on business-hours calendars,
agent capacity, escalations, canned responses, the knowledge base and CSAT / NPS surveys.

Table names follow the design document (`support_tickets`, `ticket_messages`). Every table carries
`organization_id`; foreign keys between tenant tables are backed by composite (organization_id, x_id)
constraints added in the migrations (crm/db/rls.py).

`support_tickets` is not partitioned: a partitioned table's primary and unique keys must include the
partition key, so (organization_id, number) could no longer be unique and every table pointing at a ticket
(messages, events, escalations, surveys) would have to carry the ticket's creation time in its foreign key.
docs/support.md explains the choice; indexes lead with organization_id and the queue reads by keyset.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.db.rls import org_id_key
from crm.models import Department, Organization, User, validate_time_zone
from crm.tenancy import TenantManager
from customers.models import Customer


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    WEB = "web_form", _("Web form")
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")
    SOCIAL = "social", _("Social")


class TicketType(models.TextChoices):
    QUESTION = "question", _("Question")
    INCIDENT = "incident", _("Incident")
    PROBLEM = "problem", _("Problem")
    BUG_REPORT = "bug_report", _("Bug report")
    BILLING_ISSUE = "billing_issue", _("Billing issue")
    ACCOUNT_ISSUE = "account_issue", _("Account issue")
    FEATURE_REQUEST = "feature_request", _("Feature request")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


PRIORITY_RANK = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3, Priority.URGENT: 4}


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    PENDING = "pending", _("Pending (waiting on customer)")
    ON_HOLD = "on_hold", _("On hold")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


# Statuses in which the SLA clock does not run, and those in which a ticket counts against an agent's load.
PAUSED_STATUSES = frozenset({Status.PENDING, Status.ON_HOLD})
DONE_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED})
ACTIVE_STATUSES = frozenset(set(Status.values) - DONE_STATUSES)


class BusinessCalendar(models.Model):
    """Working days and hours in a time zone, plus holidays. `hours` maps ISO weekday ("1" = Monday ...
    "7" = Sunday) to a list of ["HH:MM", "HH:MM"] intervals; a missing day is not worked."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    hours = models.JSONField(_("working hours"), default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_calendars"
        ordering = ["name"]
        constraints = [
            org_id_key("support_calendars"),
            models.UniqueConstraint(fields=["organization", "name"], name="support_calendars_name_key"),
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_holidays"
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "calendar", "date"], name="support_holidays_day_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaPolicy(models.Model):
    """An SLA policy. Policies are tried in `position` order; the first whose conditions all hold applies.
    An empty condition matches anything. `set_priority`, when given, is the priority a matching ticket gets
    (the design document's VIP → urgent, billing → high)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)
    match_vip = models.BooleanField(_("VIP customers only"), default=False)
    match_types = ArrayField(
        models.CharField(max_length=20, choices=TicketType.choices),
        default=list,
        blank=True,
        verbose_name=_("ticket types"),
    )
    match_priorities = ArrayField(
        models.CharField(max_length=8, choices=Priority.choices),
        default=list,
        blank=True,
        verbose_name=_("priorities (as the customer set them)"),
    )
    match_channels = ArrayField(
        models.CharField(max_length=10, choices=Channel.choices),
        default=list,
        blank=True,
        verbose_name=_("channels"),
    )
    set_priority = models.CharField(_("set priority to"), max_length=8, choices=Priority.choices, blank=True)
    first_response_minutes = models.PositiveIntegerField(
        _("first response within (minutes)"), validators=[MinValueValidator(1)]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolve within (minutes)"), validators=[MinValueValidator(1)]
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        verbose_name=_("business hours"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: the clock runs around the clock (calendar time)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_sla_policies"
        ordering = ["position", "id"]
        constraints = [org_id_key("support_sla_policies")]
        indexes = [models.Index(fields=["organization", "active", "position"], name="sla_policies_order_idx")]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    """Routing facts about an agent: capacity (open tickets at most) and when they were last assigned."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="support_profile")
    capacity = models.PositiveSmallIntegerField(
        _("capacity (open tickets)"), default=10, validators=[MinValueValidator(0), MaxValueValidator(500)]
    )
    accepting = models.BooleanField(_("accepting new tickets"), default=True)
    open_tickets = models.PositiveIntegerField(default=0, editable=False)
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantManager()

    class Meta:
        db_table = "support_agents"
        # open_tickets is kept by support/routing.py in the same statements that assign and release
        # tickets (a conditional UPDATE ... WHERE open_tickets < capacity), never past capacity.
        constraints = [org_id_key("support_agents")]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.open_tickets}/{self.capacity})"


class Ticket(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField(_("ticket number"), editable=False)
    subject = models.CharField(_("subject"), max_length=250)
    description = models.TextField(_("description"), blank=True)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.WEB)
    type = models.CharField(_("type"), max_length=20, choices=TicketType.choices, default=TicketType.QUESTION)
    category = models.CharField(_("category"), max_length=32, choices=Department.choices, blank=True)
    # What the customer asked for, and what the SLA policy made of it.
    requested_priority = models.CharField(
        _("requested priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.NEW)
    assigned_to = models.ForeignKey(
        User, verbose_name=_("assignee"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    # Why the ticket waits in the team queue (no eligible agent ...), empty once assigned.
    queue_reason = models.CharField(max_length=300, blank=True)
    sla_policy = models.ForeignKey(
        SlaPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Derived by support/sla.py from the ticket's events and its policy's calendar; stored for the queues.
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_paused_since = models.DateTimeField(null=True, blank=True)
    # Half of each SLA target in the policy's working time (support/sla.py): when the escalation sweep
    # warns the supervisors (support/escalation.py). Stored so the sweep selects candidates by index.
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveSmallIntegerField(default=0)
    satisfaction_rating = models.PositiveSmallIntegerField(
        _("satisfaction"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    tags = ArrayField(models.CharField(max_length=50), verbose_name=_("tags"), default=list, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_tickets"
        ordering = ["-created_at", "-id"]
        constraints = [
            org_id_key("support_tickets"),
            models.UniqueConstraint(fields=["organization", "number"], name="support_tickets_number_key"),
            models.CheckConstraint(
                condition=Q(satisfaction_rating__isnull=True) | Q(satisfaction_rating__range=(1, 5)),
                name="support_tickets_rating_ck",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="tickets_org_created_idx"),
            # Queues: active tickets by the deadline that matters first.
            models.Index(
                fields=["organization", "assigned_to", "resolution_due_at", "id"],
                condition=~Q(status__in=["resolved", "closed"]),
                name="tickets_active_queue_idx",
            ),
            models.Index(fields=["organization", "status", "category"], name="tickets_org_status_idx"),
            models.Index(fields=["organization", "customer", "-created_at"], name="tickets_org_customer_idx"),
            models.Index(
                fields=["first_response_due_at"],
                condition=~Q(status__in=["resolved", "closed"]),
                name="tickets_sla_sweep_idx",
            ),
            # The escalation sweep: running (active, not paused) tickets by their half-time instants.
            models.Index(
                fields=["organization", "first_response_warn_at"],
                condition=Q(first_response_at__isnull=True, sla_paused_since__isnull=True)
                & ~Q(status__in=["resolved", "closed"]),
                name="tickets_sla_fr_warn_idx",
            ),
            models.Index(
                fields=["organization", "resolution_warn_at"],
                condition=Q(sla_paused_since__isnull=True) & ~Q(status__in=["resolved", "closed"]),
                name="tickets_sla_res_warn_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_number} {self.subject}"

    @property
    def ticket_number(self) -> str:
        return f"T-{self.number:06d}" if self.number else ""

    @property
    def is_active(self) -> bool:
        return self.status not in DONE_STATUSES


class TicketEvent(models.Model):
    """What happened to a ticket and when: created, status / priority / assignee changes, first response,
    policy change. The SLA clock is computed from these rows, so an edit recomputes deadlines correctly."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        STATUS = "status", _("Status changed")
        PRIORITY = "priority", _("Priority changed")
        ASSIGNED = "assigned", _("Assigned")
        FIRST_RESPONSE = "first_response", _("First response")
        POLICY = "policy", _("SLA policy applied")
        ESCALATED = "escalated", _("Escalated")
        ROUTING = "routing", _("Routing")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    old_value = models.CharField(max_length=64, blank=True)
    new_value = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "ticket_events"
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["organization", "ticket", "at"], name="ticket_events_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.old_value} -> {self.new_value}"


class TicketMessage(models.Model):
    """A public reply (to or from the customer) or an internal note (agents only)."""

    class Kind(models.TextChoices):
        REPLY = "reply", _("Public reply")
        NOTE = "note", _("Internal note")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.REPLY)
    # Who wrote it: an agent (author), or the customer (from_customer, author empty).
    author = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    from_customer = models.BooleanField(default=False)
    body = models.TextField(_("message"))
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    email_message_id = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "ticket_messages"
        ordering = ["created_at", "id"]
        constraints = [
            org_id_key("ticket_messages"),
            models.CheckConstraint(
                condition=~Q(kind="note") | Q(from_customer=False), name="ticket_messages_note_by_agent_ck"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "ticket", "created_at"], name="ticket_messages_ticket_idx"),
            models.Index(
                fields=["organization", "email_message_id"],
                condition=~Q(email_message_id=""),
                name="ticket_messages_msgid_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.ticket_id}"


def attachment_path(instance: TicketAttachment, filename: str) -> str:
    # Random, unguessable names; never served by the web server directly (see support/views).
    return f"support/{instance.organization_id}/{instance.id}"


class TicketAttachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(TicketMessage, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "ticket_attachments"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organization", "message"], name="ticket_attachments_msg_idx")]

    def __str__(self) -> str:
        return self.filename


class Escalation(models.Model):
    """One escalation of a ticket at one level; unique per (ticket, level, deadline kind), so a sweep that runs
    twice (or two sweeps at once) escalates once."""

    class Level(models.TextChoices):
        WARNING = "warning", _("Half the SLA time elapsed: supervisor notified")
        BREACH = "breach", _("SLA breached: management notified")

    class Target(models.TextChoices):
        FIRST_RESPONSE = "first_response", _("First response")
        RESOLUTION = "resolution", _("Resolution")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    level = models.CharField(max_length=8, choices=Level.choices)
    target = models.CharField(max_length=16, choices=Target.choices)
    due_at = models.DateTimeField()
    at = models.DateTimeField(default=timezone.now)
    notified = ArrayField(models.UUIDField(), default=list, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "ticket_escalations"
        ordering = ["-at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "ticket", "level", "target"], name="ticket_escalations_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "level", "-at"], name="ticket_escalations_level_idx")]

    def __str__(self) -> str:
        return f"{self.level} {self.target} on {self.ticket_id}"


class CannedResponse(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=150)
    body = models.TextField(_("text"))
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_canned_responses"
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "title"], name="support_canned_title_key")
        ]

    def __str__(self) -> str:
        return self.title


class Article(models.Model):
    """A knowledge-base article. `body` is Markdown; `body_html` its sanitized rendering (support/kb.py)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200)
    body = models.TextField(_("body (Markdown)"))
    body_html = models.TextField(editable=False, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True)
    tags = ArrayField(models.CharField(max_length=50), verbose_name=_("tags"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    helpful_count = models.PositiveIntegerField(default=0, editable=False)
    not_helpful_count = models.PositiveIntegerField(default=0, editable=False)
    # Maintained by a trigger from title (weight A), tags (B) and body (C); see the migration.
    search_vector = SearchVectorField(null=True, editable=False)
    author = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "kb_articles"
        ordering = ["title"]
        constraints = [
            org_id_key("kb_articles"),
            models.UniqueConstraint(fields=["organization", "slug"], name="kb_articles_slug_key"),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="kb_articles_search_idx"),
            models.Index(fields=["organization", "status", "category"], name="kb_articles_status_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Survey(models.Model):
    """A CSAT survey after a resolved ticket (1 to 5) or an NPS survey (0 to 10); answered once through a signed,
    expiring link."""

    class Kind(models.TextChoices):
        CSAT = "csat", _("CSAT")
        NPS = "nps", _("NPS")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="surveys"
    )
    # The agent the answer is credited to (the ticket's assignee when it was sent).
    agent = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    category = models.CharField(max_length=32, choices=Department.choices, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(10)])
    comment = models.TextField(blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "support_surveys"
        ordering = ["-sent_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True)
                | Q(kind="csat", score__range=(1, 5))
                | Q(kind="nps", score__range=(0, 10)),
                name="support_surveys_score_ck",
            ),
            models.CheckConstraint(
                condition=Q(responded_at__isnull=True, score__isnull=True)
                | Q(responded_at__isnull=False, score__isnull=False),
                name="support_surveys_answer_ck",
            ),
            models.UniqueConstraint(
                fields=["organization", "ticket"],
                condition=Q(kind="csat", ticket__isnull=False),
                name="support_surveys_one_csat_per_ticket",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "kind", "responded_at"], name="support_surveys_kind_idx"),
            models.Index(fields=["organization", "agent", "responded_at"], name="support_surveys_agent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.customer_id}"
