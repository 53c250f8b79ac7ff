"""Marketing: campaigns with itemized costs, email templates, tracked sends, A/B tests, drip sequences and
lead capture forms.

Table names follow the design document (`campaigns`, `email_templates`, `email_sends`). Every table carries
`organization_id`; foreign keys between tenant tables are backed by composite (organization_id, x_id)
constraints added in the migrations (crm/db/rls.py).

`email_sends` is range-partitioned by month on `scheduled_send_time`, as the design document does. A
partitioned table's unique keys must include the partition key, so "one email per recipient" is enforced in
two steps (marketing/db.py): a campaign send row carries its campaign's frozen `send_at` in `blast_at`, tied
to it by a composite foreign key, and is unique on (organization_id, campaign_id, customer_id,
scheduled_send_time); a sequence email is unique per step run, whose due time it carries the same way.
docs/marketing.md explains it.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.db.rls import org_id_key
from crm.models import Organization, User
from crm.tenancy import TenantManager
from customers.models import Customer, Segment


class CampaignChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SOCIAL = "social", _("Social")
    ADS = "ads", _("Ads")
    EVENTS = "events", _("Events")
    WEBINAR = "webinar", _("Webinar")
    DIRECT_MAIL = "direct_mail", _("Direct mail")


class Campaign(models.Model):
    """A marketing campaign: what it costs, what it aims for, what it achieved, and its email send."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")

    class SendState(models.TextChoices):
        """Where the campaign's email send is: the progress bar reads this and the counters."""

        NOT_STARTED = "not_started", _("Not started")
        SCHEDULED = "scheduled", _("Scheduled")  # launched with a send time in the future
        MATERIALIZING = "materializing", _("Choosing recipients")
        SENDING = "sending", _("Sending")
        TESTING = "testing", _("A/B test running")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Sent")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    channels = ArrayField(
        models.CharField(max_length=12, choices=CampaignChannel.choices),
        verbose_name=_("channels"),
        default=list,
        blank=True,
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    owner = models.ForeignKey(
        User, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    start_date = models.DateField(_("start date"), null=True, blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    budget = models.DecimalField(
        _("budget"), max_digits=14, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    # The sum of the cost entries, kept by marketing.services.costs in the same transaction as each entry.
    actual_cost = models.DecimalField(_("actual cost"), max_digits=14, decimal_places=2, default=Decimal("0"))
    # Goals (the design document's target columns).
    goal_leads = models.PositiveIntegerField(_("goal: leads"), null=True, blank=True)
    goal_conversions = models.PositiveIntegerField(_("goal: conversions"), null=True, blank=True)
    goal_revenue = models.DecimalField(
        _("goal: revenue"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    # Actuals across channels. Email opens / clicks are added by tracking; other channels are entered.
    impressions = models.PositiveBigIntegerField(_("impressions"), default=0)
    clicks = models.PositiveBigIntegerField(_("clicks"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    # --- The email send -------------------------------------------------------------------------------
    template = models.ForeignKey(
        "EmailTemplate",
        verbose_name=_("email template"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    segments = models.ManyToManyField(
        Segment, through="CampaignSegment", related_name="+", verbose_name=_("segments"), blank=True
    )
    from_name = models.CharField(_("from name"), max_length=120, blank=True)
    reply_to = models.EmailField(_("reply-to"), blank=True)
    # When the send starts. Frozen once recipients are materialized: every email_sends row of the
    # campaign carries it as its partition key (see the module docstring).
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    send_state = models.CharField(max_length=14, choices=SendState.choices, default=SendState.NOT_STARTED)
    send_started_at = models.DateTimeField(null=True, blank=True)
    send_finished_at = models.DateTimeField(null=True, blank=True)
    send_error = models.CharField(max_length=500, blank=True)
    # Materialization in parallel slices of the customers' ids (marketing/sending.py): the slice bounds,
    # planned once per send (NULL until then), and the slices whose recipients are written.
    materialize_bounds = ArrayField(models.UUIDField(), null=True, blank=True, editable=False)
    materialized_slices = ArrayField(models.PositiveIntegerField(), default=list, blank=True, editable=False)
    # Counters of the send, kept set-based by the send tasks and tracking (never recounted per page view).
    recipients_total = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    delivered_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    opened_count = models.PositiveIntegerField(default=0)  # unique opens (recipients who opened)
    clicked_count = models.PositiveIntegerField(default=0)  # unique clicks
    unsubscribed_count = models.PositiveIntegerField(default=0)
    complained_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "campaigns"
        ordering = ["-created_at", "-id"]
        constraints = [
            org_id_key("campaigns"),
            # The target of email_sends' (organization_id, campaign_id, blast_at) foreign key.
            models.UniqueConstraint(
                fields=["organization", "id", "send_at"], name="campaigns_org_id_send_key"
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(start_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="campaigns_dates_ck",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="campaigns_org_status_idx"),
            models.Index(fields=["organization", "-created_at", "-id"], name="campaigns_org_created_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def send_percent(self) -> int:
        """How far the send is: recipients handled (sent, bounced or failed) over all recipients."""
        if self.send_state == self.SendState.DONE:
            return 100
        if not self.recipients_total:
            return 0
        handled = self.sent_count + self.failed_count
        return min(100, round(100 * handled / self.recipients_total))


class CampaignSegment(models.Model):
    """A segment an email campaign goes to (one campaign, one or more segments)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="campaign_segments")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        db_table = "campaign_segments"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "campaign", "segment"], name="campaign_segments_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.segment_id}"


class CostEntry(models.Model):
    """One itemized cost of a campaign; their sum is the campaign's actual cost."""

    class Category(models.TextChoices):
        ADS = "ads", _("Advertising")
        CONTENT = "content", _("Content")
        EVENTS = "events", _("Events")
        SOFTWARE = "software", _("Software")
        PRINT = "print", _("Print and postage")
        AGENCY = "agency", _("Agency")
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="cost_entries")
    incurred_on = models.DateField(_("date"), default=timezone.localdate)
    category = models.CharField(
        _("category"), max_length=10, choices=Category.choices, default=Category.OTHER
    )
    description = models.CharField(_("description"), max_length=300)
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantManager()

    class Meta:
        db_table = "campaign_costs"
        ordering = ["-incurred_on", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="campaign_costs_amount_ck")
        ]
        indexes = [
            models.Index(fields=["organization", "campaign", "-incurred_on"], name="campaign_costs_idx")
        ]

    def __str__(self) -> str:
        return f"{self.description} {self.amount}"


class EmailTemplate(models.Model):
    """A reusable email: subject, HTML and plain-text bodies with merge fields (marketing/merge.py)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=150)
    description = models.CharField(_("description"), max_length=300, blank=True)
    subject = models.CharField(_("subject"), max_length=250)
    html_body = models.TextField(_("HTML body"))
    text_body = models.TextField(_("plain-text body"), blank=True)
    is_archived = models.BooleanField(_("archived"), default=False)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "email_templates"
        ordering = ["name"]
        constraints = [
            org_id_key("email_templates"),
            models.UniqueConstraint("organization", Lower("name"), name="email_templates_org_name_ci_key"),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One arm of a campaign's A/B test: a subject and/or a body (another template) to compare."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("label"), max_length=20)  # "A", "B", ...
    subject = models.CharField(
        _("subject"), max_length=250, blank=True, help_text=_("Empty: the template's subject.")
    )
    template = models.ForeignKey(
        EmailTemplate,
        verbose_name=_("template"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: the campaign's template."),
    )
    # Results, filled when the test is evaluated (marketing/abtest.py).
    recipients = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    objects = TenantManager()

    class Meta:
        db_table = "campaign_variants"
        ordering = ["label"]
        constraints = [
            org_id_key("campaign_variants"),
            models.UniqueConstraint(
                fields=["organization", "campaign", "label"], name="campaign_variants_label_key"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class ABTest(models.Model):
    """A campaign's A/B test: a share of the audience split at random between the variants; after the test
    duration the winner (by the chosen metric, if significant) goes to the rest of the audience."""

    class Metric(models.TextChoices):
        OPEN_RATE = "open_rate", _("Open rate")
        CLICK_RATE = "click_rate", _("Click rate")
        CONVERSIONS = "conversions", _("Conversions")
        REVENUE = "revenue", _("Attributed revenue")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Not started")
        RUNNING = "running", _("Running")
        DECIDED = "decided", _("Winner chosen")
        INCONCLUSIVE = "inconclusive", _("Inconclusive: default sent")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="ab_test")
    test_share = models.PositiveSmallIntegerField(
        _("test share (%)"), default=20, validators=[MinValueValidator(2), MaxValueValidator(100)]
    )
    metric = models.CharField(
        _("winning metric"), max_length=12, choices=Metric.choices, default=Metric.OPEN_RATE
    )
    duration_hours = models.PositiveSmallIntegerField(
        _("test duration (hours)"), default=24, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )
    confidence_level = models.DecimalField(
        _("confidence level"), max_digits=4, decimal_places=3, default=Decimal("0.950")
    )
    min_sample = models.PositiveIntegerField(_("minimum recipients per variant"), default=100)
    default_variant = models.ForeignKey(
        Variant,
        verbose_name=_("default if inconclusive"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    started_at = models.DateTimeField(null=True, blank=True)
    decide_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(Variant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    p_value = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)  # 1 - p of the winner against the runner-up
    explanation = models.TextField(blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "campaign_ab_tests"
        constraints = [
            models.UniqueConstraint(fields=["organization", "campaign"], name="campaign_ab_tests_key")
        ]
        indexes = [models.Index(fields=["status", "decide_at"], name="campaign_ab_tests_due_idx")]

    def __str__(self) -> str:
        return f"A/B test of {self.campaign_id}"


class SendStatus(models.TextChoices):
    """Where one email is. Opens, clicks and unsubscribes keep their own times; the status is the furthest
    delivery step reached (held → queued → sending → sent → delivered, or bounced / failed)."""

    HELD = "held", _("Held for the A/B winner")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")  # excluded after materialization (unsubscribed meanwhile, restricted)


class EmailSend(models.Model):
    """One email to one recipient (table `email_sends`, partitioned by month on `scheduled_send_time`; the
    real primary key is (id, scheduled_send_time), created by migration SQL in marketing/db.py)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    variant = models.ForeignKey(
        Variant, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    step_run = models.ForeignKey(
        "StepRun", on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    # The campaign's send_at for a campaign send, NULL for a sequence email (see the module docstring).
    blast_at = models.DateTimeField(null=True, blank=True)
    scheduled_send_time = models.DateTimeField()
    email = models.CharField(max_length=254)  # the address it went to, as it was then
    status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.QUEUED)
    in_test = models.BooleanField(default=False)  # part of the A/B test sample
    attempts = models.PositiveSmallIntegerField(default=0)
    message_id = models.CharField(max_length=255, blank=True)  # the Message-ID / provider id, for webhooks
    queued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)  # the first open
    open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)  # the first click
    click_count = models.PositiveIntegerField(default=0)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        managed = False
        db_table = "email_sends"
        ordering = ["-scheduled_send_time", "-id"]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"


class Suppression(models.Model):
    """An address the organization must not email again: unsubscribed, hard-bounced or complained.

    Recipient materialization and every send check it, so an unsubscribe is respected by every campaign
    and sequence at once (the customer's email opt-in is cleared too)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Hard bounce")
        COMPLAINED = "complained", _("Spam complaint")
        MANUAL = "manual", _("Added by staff")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    email = models.CharField(max_length=254)  # stored lower-cased
    reason = models.CharField(max_length=12, choices=Reason.choices)
    campaign = models.ForeignKey(Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "email_suppressions"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="email_suppressions_key")
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class Sequence(models.Model):
    """A drip / nurture sequence: ordered steps that each enrolled customer walks through."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ARCHIVED = "archived", _("Archived")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=150)
    description = models.CharField(_("description"), max_length=300, blank=True)
    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.PROTECT,
        related_name="sequences",
        help_text=_("Its emails, opens and clicks count towards this campaign."),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Enrollment triggers: a segment's members, customers reaching a score, form submissions (the form
    # names the sequence), or by hand.
    enroll_segment = models.ForeignKey(
        Segment,
        verbose_name=_("enroll members of"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    enroll_min_score = models.PositiveSmallIntegerField(
        _("enroll at lead score"), null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    exit_on_unsubscribe = models.BooleanField(_("exit on unsubscribe"), default=True)
    exit_on_conversion = models.BooleanField(_("exit on conversion (an opportunity won)"), default=True)
    exit_on_reply = models.BooleanField(_("exit on reply"), default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "marketing_sequences"
        ordering = ["name"]
        constraints = [
            org_id_key("marketing_sequences"),
            models.UniqueConstraint("organization", Lower("name"), name="marketing_sequences_name_key"),
        ]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    """One step of a sequence. Branches only jump forward (to a later position), so a path never loops and
    each enrollment runs each step at most once (unique in sequence_step_runs)."""

    class Kind(models.TextChoices):
        SEND_EMAIL = "send_email", _("Send an email")
        WAIT = "wait", _("Wait")
        BRANCH = "branch", _("Branch on a condition")
        UPDATE_FIELD = "update_field", _("Change a field or stage")
        CREATE_TASK = "create_task", _("Create a task for the owner")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    template = models.ForeignKey(
        EmailTemplate,
        verbose_name=_("template"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    wait_days = models.PositiveSmallIntegerField(_("wait (days)"), null=True, blank=True)
    # Branch: {"kind": "score_at_least" | "lifecycle_stage_in" | "opened_previous" | "clicked_previous",
    #          "value": ...}; true goes on to the next position, false jumps to `else_position`
    # (no value: the sequence ends for this enrollment).
    condition = models.JSONField(_("condition"), default=dict, blank=True)
    else_position = models.PositiveSmallIntegerField(_("if not, go to step"), null=True, blank=True)
    # Update field: {"field": "lifecycle_stage" | "tags_add" | "vip_status" | ..., "value": ...}
    update = models.JSONField(_("change"), default=dict, blank=True)
    # Create task: the owner's activity.
    task_subject = models.CharField(_("task subject"), max_length=200, blank=True)
    task_due_days = models.PositiveSmallIntegerField(_("task due in (days)"), null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "marketing_sequence_steps"
        ordering = ["sequence", "position"]
        constraints = [
            org_id_key("marketing_sequence_steps"),
            models.UniqueConstraint(
                fields=["organization", "sequence", "position"],
                name="sequence_steps_position_key",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.CheckConstraint(
                condition=models.Q(else_position__isnull=True)
                | models.Q(else_position__gt=models.F("position")),
                name="sequence_steps_forward_ck",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}"


class Enrollment(models.Model):
    """One customer walking through one sequence."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        EXITED = "exited", _("Exited")

    class Source(models.TextChoices):
        SEGMENT = "segment", _("Segment")
        SCORE = "score", _("Lead score")
        FORM = "form", _("Form submission")
        MANUAL = "manual", _("By hand")

    class ExitReason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        CONVERTED = "converted", _("Converted")
        REPLIED = "replied", _("Replied")
        RESTRICTED = "restricted", _("Processing restricted")
        REMOVED = "removed", _("Removed by hand")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    next_position = models.PositiveSmallIntegerField(null=True, blank=True)  # NULL: nothing left to run
    next_run_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=12, choices=ExitReason.choices, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "sequence_enrollments"
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            org_id_key("sequence_enrollments"),
            models.UniqueConstraint(
                fields=["organization", "sequence", "customer"], name="sequence_enrollments_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="sequence_enrollments_due_idx",
                condition=models.Q(status="active"),
            ),
            models.Index(fields=["organization", "customer"], name="sequence_enrollments_cust_idx"),
            # The sequence page's enrollment list: keyset on enrolled_at within one sequence.
            models.Index(
                fields=["organization", "sequence", "-enrolled_at", "-id"],
                name="sequence_enrollments_list_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.sequence_id}"


class StepRun(models.Model):
    """One step an enrollment ran: its path. Unique per (enrollment, step), so the beat task run twice
    advances once; a sequence email points here and is unique per step run (see the module docstring)."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Email queued")
        SKIPPED = "skipped", _("Email skipped")
        WAITED = "waited", _("Waited")
        BRANCH_YES = "branch_yes", _("Condition met")
        BRANCH_NO = "branch_no", _("Condition not met")
        UPDATED = "updated", _("Field changed")
        TASK = "task", _("Task created")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="runs")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    ran_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "sequence_step_runs"
        ordering = ["ran_at", "id"]
        constraints = [
            org_id_key("sequence_step_runs"),
            models.UniqueConstraint(
                fields=["organization", "enrollment", "step"], name="sequence_step_runs_key"
            ),
            # The target of email_sends' (organization_id, step_run_id, scheduled_send_time) foreign key.
            models.UniqueConstraint(
                fields=["organization", "id", "due_at"], name="sequence_step_runs_due_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_id}: {self.outcome}"


class LeadForm(models.Model):
    """A hosted lead capture form of a campaign, at a public URL (/forms/<org-slug>/<form-slug>/)."""

    # The customer fields a form may ask for (email is always asked).
    FIELD_CHOICES = [
        ("first_name", _("First name")),
        ("last_name", _("Last name")),
        ("company_name", _("Company")),
        ("job_title", _("Job title")),
        ("phone", _("Phone")),
        ("city", _("City")),
        ("country", _("Country")),
    ]

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="forms"
    )
    name = models.CharField(_("name"), max_length=150)
    slug = models.SlugField(_("address"), max_length=80)
    title = models.CharField(_("heading"), max_length=200)
    intro = models.TextField(_("introduction"), blank=True)
    fields = ArrayField(
        models.CharField(max_length=20, choices=FIELD_CHOICES),
        verbose_name=_("fields"),
        default=list,
        blank=True,
    )
    consent_text = models.CharField(
        _("consent checkbox text"),
        max_length=300,
        default=_("Yes, send me emails about products, events and offers. I can unsubscribe at any time."),
    )
    require_consent = models.BooleanField(_("consent required to submit"), default=False)
    thank_you_text = models.TextField(_("thank-you text"), default=_("Thank you! We will be in touch."))
    sequence = models.ForeignKey(
        Sequence,
        verbose_name=_("enroll in sequence"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    is_active = models.BooleanField(_("accepting submissions"), default=True)
    submission_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantManager()

    class Meta:
        db_table = "marketing_forms"
        ordering = ["name"]
        constraints = [
            org_id_key("marketing_forms"),
            models.UniqueConstraint(fields=["organization", "slug"], name="marketing_forms_slug_key"),
        ]

    def __str__(self) -> str:
        return self.name


class FormSubmission(models.Model):
    """One submission of a lead form: what was entered, the customer it created or updated, consent."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    form = models.ForeignKey(LeadForm, on_delete=models.CASCADE, related_name="submissions")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(default=dict)
    consent_given = models.BooleanField(default=False)
    created_customer = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "marketing_form_submissions"
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "form", "-submitted_at"], name="form_submissions_form_idx"),
            models.Index(fields=["organization", "customer"], name="form_submissions_cust_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.form_id} by {self.customer_id}"
