"""Sales: pipelines and stages, opportunities with their change history, activities, products, quotes with
versions and approvals, orders and quotas.

Table names follow the design document (`opportunities`, `opportunity_activities`, `quotes`, `quote_items`).
Every table carries `organization_id`; foreign keys between tenant tables are backed by composite
(organization_id, x_id) constraints added in the migrations (crm/db/rls.py). Money is `Decimal` with a
currency; totals are computed server-side in `sales/pricing.py` and stored, so lists and reports sum columns
instead of recomputing lines.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.db.rls import org_id_key
from crm.models import CURRENCY_CHOICES, Organization, User
from crm.tenancy import TenantManager
from customers.models import Customer

PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class SalesSettings(models.Model):
    """Per-organization sales rules (one row per organization, created on first use)."""

    class Visibility(models.TextChoices):
        ALL = "all", _("Sales reps see every opportunity")
        OWN = "own", _("Sales reps see only their own opportunities")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    opportunity_visibility = models.CharField(
        _("opportunity visibility"), max_length=8, choices=Visibility.choices, default=Visibility.ALL
    )
    no_activity_days = models.PositiveSmallIntegerField(
        _("follow-up after days without activity"),
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("An open opportunity with no activity for this many days gets a follow-up task."),
    )
    approval_discount_pct = models.DecimalField(
        _("approval needed above discount (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("15"),
        validators=PERCENT,
    )
    approval_total = models.DecimalField(
        _("approval needed above total"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("50000"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    quote_valid_days = models.PositiveSmallIntegerField(
        _("quotes valid for (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "sales_settings"
        constraints = [org_id_key("sales_settings")]

    def __str__(self) -> str:
        return f"Sales settings of {self.organization_id}"


class ForecastCategory(models.TextChoices):
    PIPELINE = "pipeline", _("Pipeline")
    BEST_CASE = "best_case", _("Best case")
    COMMIT = "commit", _("Commit")
    CLOSED = "closed", _("Closed")
    OMITTED = "omitted", _("Omitted")


class Pipeline(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    is_default = models.BooleanField(_("default pipeline"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantManager()

    class Meta:
        db_table = "sales_pipelines"
        ordering = ["-is_default", "name"]
        constraints = [
            org_id_key("sales_pipelines"),
            models.UniqueConstraint(fields=["organization", "name"], name="sales_pipelines_org_name_key"),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(is_default=True), name="sales_pipelines_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """A pipeline stage. `outcome` says what reaching it means: still open, won, or lost."""

    class Outcome(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    probability = models.PositiveSmallIntegerField(
        _("default probability (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    forecast_category = models.CharField(
        _("forecast category"),
        max_length=12,
        choices=ForecastCategory.choices,
        default=ForecastCategory.PIPELINE,
    )
    outcome = models.CharField(_("outcome"), max_length=4, choices=Outcome.choices, default=Outcome.OPEN)

    objects = TenantManager()

    class Meta:
        db_table = "sales_stages"
        ordering = ["pipeline", "position", "id"]
        constraints = [
            org_id_key("sales_stages"),
            models.UniqueConstraint(
                fields=["organization", "pipeline", "name"], name="sales_stages_name_key"
            ),
            models.CheckConstraint(condition=Q(probability__lte=100), name="sales_stages_probability_ck"),
        ]
        indexes = [models.Index(fields=["organization", "pipeline", "position"], name="sales_stages_pos_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.outcome != self.Outcome.OPEN


class Opportunity(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="+"
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="+")
    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+")
    assigned_to = models.ForeignKey(
        User, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    amount = models.DecimalField(
        _("estimated value"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES, default="USD")
    # The effective probability and category: copied from the stage on every stage change unless the
    # owner overrode them (then kept until they clear the override). Stored, so the forecast reads columns.
    probability = models.PositiveSmallIntegerField(
        _("probability (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    probability_overridden = models.BooleanField(default=False)
    forecast_category = models.CharField(
        _("forecast category"),
        max_length=12,
        choices=ForecastCategory.choices,
        default=ForecastCategory.PIPELINE,
    )
    forecast_category_overridden = models.BooleanField(default=False)
    expected_close_date = models.DateField(_("expected close date"))
    actual_close_date = models.DateField(_("actual close date"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=4, choices=Status.choices, default=Status.OPEN)
    lost_reason = models.CharField(_("lost reason"), max_length=300, blank=True)
    # The campaign that sourced the deal (first-touch credit in attribution when no interaction says more).
    source_campaign = models.ForeignKey(
        "marketing.Campaign",
        verbose_name=_("source campaign"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sourced_opportunities",
        db_constraint=False,  # the composite tenant key (marketing migration 0001) is the constraint
        db_index=False,  # indexed as (organization_id, source_campaign_id)
    )
    next_step = models.CharField(_("next step"), max_length=300, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "opportunities"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "opportunities"
        constraints = [
            org_id_key("opportunities"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="opportunities_probability_ck"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunities_amount_ck"),
            models.CheckConstraint(
                condition=Q(status="open", actual_close_date__isnull=True)
                | (~Q(status="open") & Q(actual_close_date__isnull=False)),
                name="opportunities_close_date_ck",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="opportunities_org_created_idx"),
            models.Index(fields=["organization", "stage", "-amount"], name="opportunities_org_stage_idx"),
            models.Index(
                fields=["organization", "assigned_to", "status", "expected_close_date"],
                name="opportunities_org_owner_idx",
            ),
            models.Index(fields=["organization", "customer", "status"], name="opportunities_org_cust_idx"),
            models.Index(
                fields=["organization", "status", "last_activity_at"], name="opportunities_org_idle_idx"
            ),
            # The forecast: open deals by close month, read without touching the heap (index-only).
            models.Index(
                fields=["organization", "status", "expected_close_date"],
                include=["amount", "probability", "forecast_category", "assigned_to", "stage"],
                name="opportunities_forecast_idx",
            ),
            models.Index(
                fields=["organization", "status", "actual_close_date"],
                include=["amount", "assigned_to"],
                name="opportunities_closed_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.probability / Decimal(100)).quantize(Decimal("0.01"))

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class OpportunityChange(models.Model):
    """A change of stage, amount, close date, status or owner: from, to, when, who. Stage values are stage
    ids (names can be renamed); amounts and dates are their ISO text."""

    class Field(models.TextChoices):
        STAGE = "stage", _("Stage")
        AMOUNT = "amount", _("Amount")
        CLOSE_DATE = "expected_close_date", _("Expected close date")
        STATUS = "status", _("Status")
        OWNER = "assigned_to", _("Owner")
        PROBABILITY = "probability", _("Probability")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="changes")
    field = models.CharField(max_length=24, choices=Field.choices)
    old_value = models.CharField(max_length=64, blank=True)
    new_value = models.CharField(max_length=64, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "opportunity_changes"
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "opportunity", "-changed_at"], name="opp_changes_opp_idx"),
            models.Index(fields=["organization", "field", "-changed_at"], name="opp_changes_field_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} -> {self.new_value}"


class Activity(models.Model):
    """A call, meeting, email, task or note on an opportunity and/or a customer (table of the design
    document: `opportunity_activities`)."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        MEETING = "meeting", _("Meeting")
        EMAIL = "email", _("Email")
        TASK = "task", _("Task")
        NOTE = "note", _("Note")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(_("type"), max_length=8, choices=Kind.choices, default=Kind.TASK)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    reminder_at = models.DateTimeField(_("remind me at"), null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    owner = models.ForeignKey(
        User, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=300, blank=True)
    follow_up_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="follow_ups"
    )
    # Set on activities a rule created ("no_activity:<opportunity>:<idle since>"), unique per organization:
    # a rule that runs twice for the same idle spell finds its task already there.
    rule_key = models.CharField(max_length=120, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "opportunity_activities"
        ordering = ["due_at", "id"]
        verbose_name_plural = "activities"
        constraints = [
            org_id_key("opportunity_activities"),
            models.CheckConstraint(
                condition=Q(opportunity__isnull=False) | Q(customer__isnull=False),
                name="opportunity_activities_target_ck",
            ),
            models.UniqueConstraint(
                fields=["organization", "rule_key"],
                condition=~Q(rule_key=""),
                name="opportunity_activities_rule_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "owner", "completed_at", "due_at"], name="activities_owner_idx"
            ),
            models.Index(fields=["organization", "opportunity", "-created_at"], name="activities_opp_idx"),
            models.Index(fields=["organization", "customer", "-created_at"], name="activities_cust_idx"),
            models.Index(
                fields=["reminder_at"],
                condition=Q(reminded_at__isnull=True, completed_at__isnull=True, reminder_at__isnull=False),
                name="activities_reminder_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    unit_price = models.DecimalField(
        _("unit price"), max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES, default="USD")
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "products"
        ordering = ["name", "id"]
        constraints = [
            org_id_key("products"),
            models.UniqueConstraint(fields=["organization", "sku"], name="products_org_sku_key"),
        ]
        indexes = [models.Index(fields=["organization", "active", "name"], name="products_org_active_idx")]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Quote(models.Model):
    """One version of a quote. All versions of a quote share `number`; only the highest `version` is
    current, earlier ones are read-only."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending_approval", _("Pending approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        SENT = "sent", _("Sent")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="quotes")
    number = models.PositiveIntegerField(_("quote number"), editable=False)
    version = models.PositiveSmallIntegerField(_("version"), default=1, editable=False)
    is_current = models.BooleanField(default=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES, default="USD")
    valid_until = models.DateField(_("valid until"))
    terms = models.TextField(_("terms and notes"), blank=True)
    # Totals, computed by sales/pricing.py from the lines and stored.
    subtotal = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    discount_total = models.DecimalField(
        max_digits=16, decimal_places=2, default=Decimal("0"), editable=False
    )
    tax_total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    max_discount_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"), editable=False
    )
    approval_reasons = models.JSONField(default=list, blank=True, editable=False)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submitted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "quotes"
        ordering = ["-number", "-version"]
        constraints = [
            org_id_key("quotes"),
            models.UniqueConstraint(
                fields=["organization", "number", "version"], name="quotes_number_version_key"
            ),
            models.UniqueConstraint(
                fields=["organization", "number"], condition=Q(is_current=True), name="quotes_one_current"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "opportunity", "-created_at"], name="quotes_opp_idx"),
            models.Index(fields=["organization", "status", "valid_until"], name="quotes_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.quote_number} v{self.version}"

    @property
    def quote_number(self) -> str:
        return f"Q-{self.number:05d}" if self.number else ""

    @property
    def is_editable(self) -> bool:
        return self.is_current and self.status in (self.Status.DRAFT, self.Status.REJECTED)


class QuoteItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField(default=0)
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(
        _("quantity"),
        max_digits=12,
        decimal_places=3,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    unit_price = models.DecimalField(
        _("unit price"), max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    discount_pct = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT
    )
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT
    )
    line_subtotal = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    line_discount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    line_tax = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)
    line_total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), editable=False)

    objects = TenantManager()

    class Meta:
        db_table = "quote_items"
        ordering = ["quote", "position", "id"]
        indexes = [models.Index(fields=["organization", "quote", "position"], name="quote_items_quote_idx")]

    def __str__(self) -> str:
        return self.description


class QuoteEvent(models.Model):
    """The approval flow's steps with their comments: submitted, approved, rejected, sent, accepted, ..."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=24)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    comment = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        db_table = "quote_events"
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["organization", "quote", "at"], name="quote_events_quote_idx")]

    def __str__(self) -> str:
        return f"{self.action} ({self.from_status} -> {self.to_status})"


class Order(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        FULFILLED = "fulfilled", _("Fulfilled")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField(_("order number"), editable=False)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="+"
    )
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    # An accepted quote makes exactly one order (unique), however often "accept" is submitted.
    quote = models.OneToOneField(
        Quote, on_delete=models.SET_NULL, null=True, blank=True, related_name="order"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    order_date = models.DateField(_("order date"), default=timezone.localdate)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES, default="USD")
    subtotal = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    discount_total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    tax_total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    external_reference = models.CharField(
        _("external reference"), max_length=100, blank=True, help_text=_("The order's id in the ERP.")
    )
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "orders"
        ordering = ["-order_date", "-number"]
        constraints = [
            org_id_key("orders"),
            models.UniqueConstraint(fields=["organization", "number"], name="orders_org_number_key"),
            models.UniqueConstraint(
                fields=["organization", "external_reference"],
                condition=~Q(external_reference=""),
                name="orders_org_external_ref_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "customer", "order_date"],
                include=["total", "status"],
                name="orders_org_customer_idx",
            ),
            models.Index(fields=["organization", "-order_date", "-number"], name="orders_org_date_idx"),
        ]

    def __str__(self) -> str:
        return self.order_number

    @property
    def order_number(self) -> str:
        return f"SO-{self.number:06d}" if self.number else ""


class OrderLine(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("1"))
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    discount_pct = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    line_total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))

    objects = TenantManager()

    class Meta:
        db_table = "order_lines"
        ordering = ["order", "position", "id"]
        indexes = [models.Index(fields=["organization", "order", "position"], name="order_lines_order_idx")]

    def __str__(self) -> str:
        return self.description


class Quota(models.Model):
    """A sales rep's revenue target for one month (`month` is the first day of that month)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, verbose_name=_("sales rep"), on_delete=models.CASCADE, related_name="+")
    month = models.DateField(_("month"))
    amount = models.DecimalField(
        _("quota"), max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "sales_quotas"
        ordering = ["month", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "month"], name="sales_quotas_user_month_key"
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="sales_quotas_first_of_month_ck"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m}: {self.amount}"
