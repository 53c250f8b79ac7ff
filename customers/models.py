"""Customers: the profile, its lifecycle history, interactions, scores with history, segments and imports.

Table names follow the design document (`customers`, `interaction_logs`, `customer_segments`,
`customer_segment_members`). Every table carries `organization_id`; foreign keys between them are backed by
composite (organization_id, x_id) constraints added in the migrations (crm/db/rls.py).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.encryption import EncryptedDateField, EncryptedTextField
from crm.models import Organization, User
from crm.tenancy import TenantManager
from customers.phones import phone_key


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber")
    LEAD = "lead", _("Lead")
    MARKETING_QUALIFIED = "marketing_qualified", _("Marketing-qualified lead")
    SALES_QUALIFIED = "sales_qualified", _("Sales-qualified lead")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    CHAMPION = "champion", _("Champion")
    CHURNED = "churned", _("Churned")


class EducationLevel(models.TextChoices):
    HIGH_SCHOOL = "high_school", _("High school")
    ASSOCIATE = "associate", _("Associate degree")
    BACHELORS = "bachelors", _("Bachelor's degree")
    MASTERS = "masters", _("Master's degree")
    PHD = "phd", _("Doctorate")
    OTHER = "other", _("Other")


class CustomerType(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    BUSINESS = "business", _("Business")


class Customer(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField(_("customer number"), editable=False)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    # Encrypted at rest (crm/encryption.py, docs/security.md); phone_hash is the keyed hash search and
    # duplicate detection find a number by, kept on every save.
    phone = EncryptedTextField(_("phone"), max_length=40, blank=True, blind_index=("phone_hash", phone_key))
    # NULL, not '', without a number: the equality joins of duplicate detection must never pair two blanks.
    phone_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    date_of_birth = EncryptedDateField(_("date of birth"), null=True, blank=True)
    education_level = models.CharField(
        _("education"), max_length=20, choices=EducationLevel.choices, blank=True
    )
    job_title = models.CharField(_("job title"), max_length=150, blank=True)
    annual_revenue = models.DecimalField(
        _("annual revenue"),
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    customer_type = models.CharField(
        _("type"), max_length=12, choices=CustomerType.choices, default=CustomerType.INDIVIDUAL
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=24, choices=LifecycleStage.choices, default=LifecycleStage.LEAD
    )
    lead_score = models.PositiveSmallIntegerField(
        _("lead score"), default=0, validators=[MaxValueValidator(100)]
    )
    engagement_score = models.PositiveSmallIntegerField(_("engagement score"), default=0)
    health_score = models.PositiveSmallIntegerField(_("health score"), default=0)
    scored_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        User, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    tags = ArrayField(models.CharField(max_length=50), verbose_name=_("tags"), default=list, blank=True)
    vip_status = models.BooleanField(_("VIP"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    street = EncryptedTextField(_("street"), max_length=200, blank=True)
    # City and state stay plaintext: segments filter on them, CCPA applicability reads the state.
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state / region"), max_length=100, blank=True)
    postal_code = EncryptedTextField(_("postal code"), max_length=20, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO 3166 code, e.g. US"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    email_opt_in = models.BooleanField(_("email opt-in"), default=False)
    # The current consent per purpose, mirrored from the latest consent record (compliance.services.consent).
    profiling_allowed = models.BooleanField(_("profiling allowed"), default=True, db_default=True)
    sale_allowed = models.BooleanField(_("sale of data allowed"), default=True, db_default=True)
    sharing_allowed = models.BooleanField(_("sharing of data allowed"), default=True, db_default=True)
    do_not_call = models.BooleanField(_("do not call"), default=False)
    last_contact_date = models.DateTimeField(_("last contact"), null=True, blank=True)
    # Privacy (GDPR/CCPA): processing restriction and the traces of erasure / anonymization.
    processing_restricted = models.BooleanField(_("processing restricted"), default=False)
    restriction_reason = models.CharField(_("restriction reason"), max_length=300, blank=True)
    restricted_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    anonymized_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "customers"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "id"], name="customers_org_id_key"),
            models.UniqueConstraint(fields=["organization", "number"], name="customers_org_number_key"),
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                name="customers_org_email_ci_key",
                condition=~models.Q(email=""),
            ),
            models.CheckConstraint(condition=models.Q(lead_score__lte=100), name="customers_lead_score_ck"),
            # A blanked phone (erasure, an edit) cannot leave its hash behind to be matched.
            models.CheckConstraint(
                condition=~models.Q(phone="") | models.Q(phone_hash__isnull=True),
                name="customers_phone_hash_ck",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="customers_org_created_idx"),
            models.Index(fields=["organization", "status"], name="customers_org_status_idx"),
            models.Index(
                fields=["organization", "lifecycle_stage", "-lead_score"], name="customers_org_stage_idx"
            ),
            models.Index(fields=["organization", "-lead_score", "-id"], name="customers_org_score_idx"),
            models.Index(
                fields=["organization", "assigned_to", "-last_contact_date"], name="customers_org_owner_idx"
            ),
            GinIndex(fields=["tags"], name="customers_tags_idx"),
            models.Index(fields=["organization", "phone_hash"], name="customers_org_phone_hash_idx"),
            GinIndex(
                OpClass(
                    models.functions.Concat(
                        "first_name",
                        models.Value(" "),
                        "last_name",
                        models.Value(" "),
                        "email",
                        models.Value(" "),
                        "company_name",
                        output_field=models.TextField(),
                    ),
                    name="gin_trgm_ops",
                ),
                name="customers_search_trgm_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, update_fields=None, **kwargs):
        # The phone's keyed hash is written with the phone (EncryptedTextField.pre_save computes it).
        if update_fields is not None and "phone" in update_fields:
            update_fields = {*update_fields, "phone_hash"}
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def display_name(self) -> str:
        return (
            f"{self.first_name} {self.last_name}".strip()
            or self.company_name
            or self.email
            or self.customer_number
        )

    @property
    def customer_number(self) -> str:
        return f"C-{self.number:06d}" if self.number else ""

    @property
    def initials(self) -> str:
        name = self.display_name
        parts = [p for p in name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"


class LifecycleChange(models.Model):
    """Every lifecycle stage change: from, to, when, who, why."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="lifecycle_changes")
    from_stage = models.CharField(max_length=24, choices=LifecycleStage.choices, blank=True)
    to_stage = models.CharField(max_length=24, choices=LifecycleStage.choices)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=300, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "customer_lifecycle_changes"
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "customer", "-changed_at"], name="lifecycle_org_cust_idx")
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '—'} → {self.to_stage}"


class InteractionType(models.TextChoices):
    EMAIL_SENT = "email_sent", _("Email sent")
    EMAIL_OPENED = "email_opened", _("Email opened")
    EMAIL_CLICKED = "email_clicked", _("Email clicked")
    WEBSITE_VISIT = "website_visit", _("Website visit")
    FORM_SUBMISSION = "form_submission", _("Form submission")
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    CHAT = "chat", _("Chat")
    NOTE = "note", _("Note")
    SOCIAL = "social", _("Social")
    PURCHASE = "purchase", _("Purchase")
    SUPPORT_TICKET = "support_ticket", _("Support ticket")


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    WEB = "web", _("Web")
    IN_PERSON = "in_person", _("In person")
    CHAT = "chat", _("Chat")
    SOCIAL = "social", _("Social")
    OTHER = "other", _("Other")


class Sentiment(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEUTRAL = "neutral", _("Neutral")
    NEGATIVE = "negative", _("Negative")


class Interaction(models.Model):
    """One touchpoint with a customer (table `interaction_logs`, range-partitioned by month on
    `interaction_date`; the real primary key is (id, interaction_date), created by migration SQL)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, related_name="interactions", db_constraint=False
    )
    interaction_date = models.DateTimeField(default=timezone.now)
    interaction_type = models.CharField(max_length=24, choices=InteractionType.choices)
    channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    campaign = models.ForeignKey(
        "marketing.Campaign",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    notes = models.TextField(blank=True)
    logged_by = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        managed = False
        db_table = "interaction_logs"
        ordering = ["-interaction_date", "-id"]

    def __str__(self) -> str:
        return f"{self.get_interaction_type_display()} {self.interaction_date:%Y-%m-%d}"


class ScoreHistory(models.Model):
    """Scores as they were at each scoring run: the trend is read from here, not from the score alone."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="score_history")
    scored_at = models.DateTimeField(default=timezone.now)
    lead_score = models.PositiveSmallIntegerField()
    engagement_score = models.PositiveSmallIntegerField()
    health_score = models.PositiveSmallIntegerField()
    breakdown = models.JSONField(default=dict)

    objects = TenantManager()

    class Meta:
        db_table = "customer_score_history"
        ordering = ["-scored_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "customer", "-scored_at"], name="score_hist_org_cust_idx")
        ]

    def __str__(self) -> str:
        return f"{self.lead_score} @ {self.scored_at:%Y-%m-%d}"


class ScoringModel(models.Model):
    """An organization's lead-scoring weights and thresholds (defaults: the design document's rules)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    weights = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = TenantManager()

    class Meta:
        db_table = "lead_scoring_models"

    def __str__(self) -> str:
        return f"Scoring model of {self.organization_id}"


class Segment(models.Model):
    class Kind(models.TextChoices):
        STATIC = "static", _("Static (hand-picked)")
        DYNAMIC = "dynamic", _("Dynamic (rules)")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    criteria = models.JSONField(_("rules"), default=dict, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "customer_segments"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "id"], name="segments_org_id_key"),
            models.UniqueConstraint("organization", Lower("name"), name="segments_org_name_ci_key"),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField(default=timezone.now)
    matched_rule = models.TextField(blank=True)
    added_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = TenantManager()

    class Meta:
        db_table = "customer_segment_members"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "segment", "customer"], name="segment_members_key"
            )
        ]
        indexes = [models.Index(fields=["organization", "customer"], name="segment_members_cust_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class SegmentEvent(models.Model):
    """Membership history: who joined or left a segment, when, and by which rule."""

    class Kind(models.TextChoices):
        ADDED = "added", _("Added")
        REMOVED = "removed", _("Removed")

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="events")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    rule = models.TextField(blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "customer_segment_events"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "segment", "-at"], name="segment_events_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.customer_id}"


class ImportJob(models.Model):
    """A CSV import, validated and applied all-or-nothing by a Celery task (progress shown on its page)."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        INTERACTIONS = "interactions", _("Interactions")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        VALIDATING = "validating", _("Checking")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Policy(models.TextChoices):
        SKIP = "skip", _("Skip existing emails")
        UPDATE = "update", _("Update existing customers")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    policy = models.CharField(max_length=8, choices=Policy.choices, default=Policy.SKIP)
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "customer_import_jobs"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="import_jobs_org_idx")]

    def __str__(self) -> str:
        return f"{self.kind} import {self.file_name}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, round(100 * self.processed_rows / self.total_rows)) if self.total_rows else 0


class DuplicateDismissal(models.Model):
    """A pair of customers a user marked "not a duplicate": the duplicates list leaves it out from then on.

    Each pair is stored once, with `customer_a_id < customer_b_id` (the order the duplicate finder uses).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer_a = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_b = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    dismissed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "customer_duplicate_dismissals"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "customer_a", "customer_b"], name="duplicate_dismissals_pair_key"
            ),
            models.CheckConstraint(
                condition=models.Q(customer_a__lt=models.F("customer_b")),
                name="duplicate_dismissals_order_ck",
            ),
        ]
        indexes = [models.Index(fields=["organization", "customer_b"], name="duplicate_dismissals_b_idx")]

    def __str__(self) -> str:
        return f"{self.customer_a_id} ≠ {self.customer_b_id}"
