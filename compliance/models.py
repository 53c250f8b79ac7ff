"""Compliance: data subject requests (GDPR and CCPA), consent records, the data access log and each
organization's privacy settings (retention periods).

Table names follow the design document (`gdpr_requests`, `ccpa_requests`). Every table carries
`organization_id` with row-level security; foreign keys between tenant tables are backed by composite
(organization_id, x_id) constraints added in the migration (crm/db/rls.py). Request rows are audited by the
same trigger as customers, so every step of a request lands in `crm_audit_log`.

What personal data each app holds, and how it is exported and erased, is declared in each app's
`personal_data.py` and collected by `compliance/registry.py`: compliance reaches data only through it.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from uuid6 import uuid7

from crm.db.rls import org_id_key
from crm.models import Organization, User
from crm.tenancy import TenantManager
from customers.models import Customer


class RequestStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    VERIFYING = "verifying", _("Verifying identity")
    PROCESSING = "processing", _("Processing")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    NOT_APPLICABLE = "not_applicable", _("Not applicable")  # CCPA only: the consumer is not a CA resident


OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.VERIFYING, RequestStatus.PROCESSING)


class RequestSource(models.TextChoices):
    STAFF = "staff", _("Entered by staff")
    PUBLIC_FORM = "public_form", _("Public request form")


class PrivacyRequest(models.Model):
    """What GDPR and CCPA requests share: the subject, the workflow, identity verification, the deadline
    (tracked like an SLA) and the result (an export's file or an erasure receipt)."""

    MAX_VERIFICATION_ATTEMPTS = 5
    VERIFICATION_CODE_TTL = timedelta(hours=24)

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField(_("request number"), editable=False)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.RECEIVED
    )
    source = models.CharField(
        _("source"), max_length=12, choices=RequestSource.choices, default=RequestSource.STAFF
    )
    # Who asked (the data subject or their agent). Pseudonymized when the request erases the subject.
    requester_name = models.CharField(_("requester name"), max_length=200, blank=True)
    requester_email = models.EmailField(_("requester email"), max_length=254)
    details = models.TextField(_("details"), blank=True, max_length=5000)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    due_at = models.DateTimeField(_("due"))
    extended_at = models.DateTimeField(_("extended"), null=True, blank=True)
    extension_reason = models.CharField(_("extension reason"), max_length=500, blank=True)
    # Identity verification: a one-time code from `secrets`, stored only as a keyed hash.
    verification_code_hash = models.CharField(max_length=128, blank=True, editable=False)
    verification_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    verification_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    verified_at = models.DateTimeField(_("identity verified"), null=True, blank=True)
    verified_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    assigned_to = models.ForeignKey(
        User, verbose_name=_("handled by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    rejection_reason = models.CharField(_("rejection reason"), max_length=500, blank=True)
    # The outcome: an erasure receipt, the export's table counts, the fields rectified, ...
    result = models.JSONField(default=dict, blank=True, editable=False)
    # An access/portability export: the ZIP's storage name and when its download link stops working.
    export_file = models.CharField(max_length=300, blank=True, editable=False)
    export_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        abstract = True

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()


class GdprRequest(PrivacyRequest):
    DEADLINE = timedelta(days=30)
    MAX_EXTENSION = timedelta(days=60)  # Art. 12(3): by two further months where necessary

    class Type(models.TextChoices):
        ACCESS = "access", _("Access")
        PORTABILITY = "portability", _("Portability")
        RECTIFY = "rectify", _("Rectification")
        ERASE = "erase", _("Erasure")
        RESTRICT = "restrict", _("Restriction of processing")
        OBJECT = "object", _("Objection to marketing")

    request_type = models.CharField(_("request type"), max_length=12, choices=Type.choices)
    # rectify: the corrections asked for, {field: new value}, applied through the normal services.
    rectification = models.JSONField(_("corrections"), default=dict, blank=True)

    class Meta:
        db_table = "gdpr_requests"
        verbose_name = _("GDPR request")
        constraints = [
            org_id_key("gdpr_requests"),
            models.UniqueConstraint(fields=["organization", "number"], name="gdpr_requests_org_number_key"),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "due_at"], name="gdpr_requests_queue_idx"),
            models.Index(fields=["organization", "customer"], name="gdpr_requests_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"GDPR-{self.number:05d}"


class CcpaRequest(PrivacyRequest):
    DEADLINE = timedelta(days=45)
    MAX_EXTENSION = timedelta(days=45)  # Cal. Civ. Code 1798.130(a)(2): once, by 45 more days

    class Type(models.TextChoices):
        ACCESS = "access", _("Right to know (access)")
        DELETE = "delete", _("Deletion")
        OPT_OUT_SALE = "opt_out_sale", _("Opt out of sale")
        OPT_OUT_SHARING = "opt_out_sharing", _("Opt out of sharing")

    # The categories of personal information each request type concerns (the design document's table).
    DATA_CATEGORIES = {
        Type.ACCESS: [
            "personal_information",
            "commercial_information",
            "internet_activity",
            "geolocation_data",
        ],
        Type.DELETE: ["personal_information", "commercial_information", "internet_activity"],
        Type.OPT_OUT_SALE: ["commercial_information"],
        Type.OPT_OUT_SHARING: ["personal_information", "commercial_information"],
    }

    request_type = models.CharField(_("request type"), max_length=16, choices=Type.choices)
    data_categories = ArrayField(models.CharField(max_length=40), default=list, blank=True, editable=False)
    # The state of residence on file when the request came in (CCPA applies to California residents only).
    resident_state = models.CharField(_("state of residence"), max_length=100, blank=True, editable=False)

    class Meta:
        db_table = "ccpa_requests"
        verbose_name = _("CCPA request")
        constraints = [
            org_id_key("ccpa_requests"),
            models.UniqueConstraint(fields=["organization", "number"], name="ccpa_requests_org_number_key"),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "due_at"], name="ccpa_requests_queue_idx"),
            models.Index(fields=["organization", "customer"], name="ccpa_requests_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"CCPA-{self.number:05d}"


class ConsentPurpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", _("Email marketing")
    PROFILING = "profiling", _("Profiling and scoring")
    SALE = "sale", _("Sale of personal information")
    SHARING = "sharing", _("Sharing of personal information")


class ConsentSource(models.TextChoices):
    FORM = "form", _("Web form")
    IMPORT = "import", _("Import")
    REQUEST = "request", _("Privacy request")
    STAFF = "staff", _("Recorded by staff")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")


class ConsentRecord(models.Model):
    """One grant or withdrawal of consent for one purpose: an append-only history per customer.

    The current state is the latest record per (customer, purpose), mirrored on the customer row
    (`email_opt_in`, `profiling_allowed`, `sale_allowed`, `sharing_allowed`) by the one service that writes
    records, so the audience and scoring queries filter on an indexed column instead of a DISTINCT ON over
    the history. Without any record, email marketing is off (opt-in) and the others are on (opt-out rights).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.CharField(_("purpose"), max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=12, choices=ConsentSource.choices)
    # What proves it: the form and its wording, the import file and line, the request number.
    proof = models.CharField(_("proof"), max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    recorded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = TenantManager()

    class Meta:
        db_table = "consent_records"
        verbose_name = _("consent record")
        constraints = [org_id_key("consent_records")]
        indexes = [
            models.Index(
                fields=["organization", "customer", "purpose", "-recorded_at"],
                name="consent_records_cust_idx",
            )
        ]

    def __str__(self) -> str:
        verb = _("granted") if self.granted else _("withdrawn")
        return f"{self.get_purpose_display()} {verb}"


class AccessAction(models.TextChoices):
    VIEW_CUSTOMER = "view_customer", _("Viewed customer profile")
    EXPORT_LIST = "export_list", _("Exported a list")
    DOWNLOAD_EXPORT = "download_export", _("Downloaded a request export")
    VIEW_AUDIT_ENTRY = "view_audit_entry", _("Viewed an audit entry")


class AccessLogEntry(models.Model):
    """Who looked at whose personal data, when (`data_access_log`, range-partitioned by month).

    Append-only like the audit trail: the app role may insert and read, never update or delete; retention
    drops whole monthly partitions (compliance/retention.py). Created by SQL in the migration.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now)
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, null=True, related_name="+", db_constraint=False
    )
    action = models.CharField(max_length=20, choices=AccessAction.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, null=True, related_name="+", db_constraint=False
    )
    # What was read: the list and its filters, the request number, ...; never the personal data itself.
    description = models.CharField(max_length=500, blank=True)
    row_count = models.PositiveIntegerField(null=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True)

    objects = TenantManager()

    class Meta:
        managed = False
        db_table = "data_access_log"
        verbose_name = _("data access")
        verbose_name_plural = _("data access log")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.occurred_at:%Y-%m-%d %H:%M}"


class PrivacySettings(models.Model):
    """An organization's retention periods. Defaults follow the design document (7 years of inactivity
    before a customer is anonymized)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    customer_retention_days = models.PositiveIntegerField(
        _("anonymize customers inactive for (days)"),
        default=7 * 365,
        validators=[MinValueValidator(30), MaxValueValidator(50 * 365)],
    )
    interaction_retention_months = models.PositiveSmallIntegerField(
        _("keep interaction logs for (months)"),
        default=84,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
    )
    audit_retention_months = models.PositiveSmallIntegerField(
        _("keep audit and access logs for (months)"),
        default=84,
        validators=[MinValueValidator(12), MaxValueValidator(600)],
    )
    anonymization_enabled = models.BooleanField(_("anonymize stale customers nightly"), default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = TenantManager()

    class Meta:
        db_table = "privacy_settings"
        verbose_name = _("privacy settings")
        verbose_name_plural = _("privacy settings")

    def __str__(self) -> str:
        return str(_("Privacy settings"))


class AnonymizationRun(models.Model):
    """One pass of the stale-customer anonymization (nightly beat or `manage.py anonymize_stale`).

    Audited, so the trail shows "anonymized N customers" per run. The counters move in the same
    transaction as each batch they count, so after a crash the row says exactly how many customers that
    run anonymized before it stopped (status `failed`, or still `running` when the process was killed).
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    dry_run = models.BooleanField(_("dry run"), default=False)
    # The rule the run applied: customers without contact since `cutoff` (= start - retention_days).
    retention_days = models.PositiveIntegerField(_("retention (days)"))
    cutoff = models.DateTimeField(_("no contact since"))
    stale_found = models.PositiveIntegerField(_("stale customers found"), default=0)
    anonymized_count = models.PositiveIntegerField(_("customers anonymized"), default=0)
    batches = models.PositiveIntegerField(_("batches"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    started_by = models.ForeignKey(
        User, verbose_name=_("started by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = TenantManager()

    class Meta:
        db_table = "anonymization_runs"
        verbose_name = _("anonymization run")
        constraints = [org_id_key("anonymization_runs")]
        indexes = [models.Index(fields=["organization", "-started_at"], name="anonymization_runs_org_idx")]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"
