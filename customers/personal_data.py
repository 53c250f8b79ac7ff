"""What personal data the customers app holds (compliance/registry.py): the profile itself, its lifecycle
history, interactions, scores and segment memberships.

Decisions worth knowing:
- The profile row stays (counts, deals and orders still point at it) under a pseudonym: "Erased customer" /
  "Anonymized customer" and its number, email blank (compliance/erasure.py also clears email_opt_in).
- `state` and `country` are kept: a region identifies no one on its own, and the state is what decided
  whether past CCPA requests applied (California); regional statistics keep adding up. Street, city and
  postal code are blanked.
- Score history holds numbers only (points per component), so it is exported and kept.
"""

from compliance.registry import Category, Erase, NotPersonal, PersonalData, PersonalField, register
from customers import models

C = Category
KEEP = Erase.KEEP

register(
    PersonalData(
        model=models.Customer,
        subject="",
        label="profile",
        fields=(
            PersonalField("first_name", Erase.PSEUDONYM, pseudonym="{label}"),
            PersonalField("last_name", Erase.PSEUDONYM, pseudonym="{number}"),
            PersonalField("email", Erase.PSEUDONYM),
            PersonalField("phone", Erase.BLANK),
            # The keyed hash of the phone number (crm/encryption.py): it finds the number, so it goes with it.
            PersonalField("phone_hash", Erase.BLANK),
            PersonalField("date_of_birth", Erase.BLANK),
            PersonalField("education_level", Erase.BLANK),
            PersonalField("company_name", Erase.BLANK),
            PersonalField("job_title", Erase.BLANK),
            PersonalField("tags", Erase.BLANK),
            PersonalField("street", Erase.BLANK),
            PersonalField("city", Erase.BLANK),
            PersonalField("postal_code", Erase.BLANK),
            PersonalField("state", KEEP, C.GEOLOCATION),
            PersonalField("country", KEEP, C.GEOLOCATION),
            PersonalField("restriction_reason", Erase.REDACT),
            PersonalField("customer_type", KEEP),
            PersonalField("annual_revenue", KEEP, C.COMMERCIAL),
            PersonalField("lifecycle_stage", KEEP, C.COMMERCIAL),
            PersonalField("lead_score", KEEP, C.INTERNET),
            PersonalField("engagement_score", KEEP, C.INTERNET),
            PersonalField("health_score", KEEP, C.COMMERCIAL),
            PersonalField("vip_status", KEEP, C.COMMERCIAL),
            PersonalField("status", KEEP),
            PersonalField("email_opt_in", KEEP),
            PersonalField("profiling_allowed", KEEP),
            PersonalField("sale_allowed", KEEP),
            PersonalField("sharing_allowed", KEEP),
            PersonalField("do_not_call", KEEP),
            PersonalField("processing_restricted", KEEP),
            PersonalField("last_contact_date", KEEP, C.COMMERCIAL),
            PersonalField("created_at", KEEP),
        ),
        not_personal={"source": "the channel the customer came from (a campaign or list name staff chose)"},
    ),
    PersonalData(
        model=models.LifecycleChange,
        subject="customer",
        label="lifecycle_changes",
        fields=(
            PersonalField("from_stage", KEEP, C.COMMERCIAL),
            PersonalField("to_stage", KEEP, C.COMMERCIAL),
            PersonalField("changed_at", KEEP, C.COMMERCIAL),
            PersonalField("reason", Erase.REDACT, C.COMMERCIAL),
        ),
    ),
    PersonalData(
        model=models.Interaction,
        subject="customer",
        label="interactions",
        fields=(
            PersonalField("interaction_date", KEEP, C.INTERNET),
            PersonalField("interaction_type", KEEP, C.INTERNET),
            PersonalField("channel", KEEP, C.INTERNET),
            PersonalField("sentiment", KEEP, C.INTERNET),
            PersonalField("outcome", Erase.REDACT, C.INTERNET),
            PersonalField("notes", Erase.REDACT, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.ScoreHistory,
        subject="customer",
        label="score_history",
        fields=(
            PersonalField("scored_at", KEEP, C.INTERNET),
            PersonalField("lead_score", KEEP, C.INTERNET),
            PersonalField("engagement_score", KEEP, C.INTERNET),
            PersonalField("health_score", KEEP, C.INTERNET),
            # Points per scoring component ({"engagement_score": 12, ...}): numbers, no personal values.
            PersonalField("breakdown", KEEP, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.SegmentMember,
        subject="customer",
        label="segment_memberships",
        fields=(
            PersonalField("segment", KEEP, C.INTERNET),
            PersonalField("added_at", KEEP, C.INTERNET),
            # Why the customer matched (the rules in words); rewritten by the next refresh if still matching.
            PersonalField("matched_rule", Erase.REDACT, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.SegmentEvent,
        subject="customer",
        label="segment_events",
        fields=(
            PersonalField("segment", KEEP, C.INTERNET),
            PersonalField("kind", KEEP, C.INTERNET),
            PersonalField("at", KEEP, C.INTERNET),
            PersonalField("rule", Erase.REDACT, C.INTERNET),
        ),
    ),
    NotPersonal(
        model=models.ScoringModel,
        fields={"weights": "the organization's scoring weights and thresholds"},
    ),
    NotPersonal(
        model=models.Segment,
        fields={
            "name": "a segment's name, chosen by staff",
            "description": "what the segment is for, written by staff",
            "criteria": "the segment's rules (fields, operators, thresholds), not a person's values",
        },
    ),
    NotPersonal(
        model=models.ImportJob,
        fields={
            "file_name": "the uploaded file's name, chosen by staff",
            "file_path": "where the upload waits until imported (deleted once the import ran)",
            "errors": "line numbers, column names and validation messages, linked to no customer",
            "message": "the import's summary (counts)",
        },
    ),
    NotPersonal(model=models.DuplicateDismissal, fields={}),
)
