"""What personal data the marketing app holds (compliance/registry.py): the emails sent to the subject,
suppressions of their address, their sequence enrollments and runs, and their form submissions.

Send rows stay with their statuses, times and open/click counts, so campaign totals and A/B results do not
drop; the address they went to is blanked and a bounce's error text redacted. A suppression points at the
subject only by value (the address, stored lower-cased); it is pseudonymized rather than deleted, and the
erased customer, whose email is blank and who is erased, is never mailable again anyway
(marketing/selectors/audience.py). Campaign, template, sequence and form definitions are the
organization's, not anyone's personal data.
"""

from django.db.models import Q

from compliance.registry import (
    Category,
    Erase,
    NotPersonal,
    PersonalData,
    PersonalField,
    SubjectIdentity,
    register,
)
from marketing import models

C = Category
KEEP = Erase.KEEP
CONTENT = "marketing content written by staff, no one's personal data"


def suppressions_of(identity: SubjectIdentity) -> Q:
    return suppressions_of_many([identity])


def suppressions_of_many(identities: list[SubjectIdentity]) -> Q:
    """By value: the subjects' addresses, as the suppression list stores them (lower-cased)."""
    return Q(email__in=[identity.email.strip().lower() for identity in identities if identity.email.strip()])


register(
    PersonalData(
        model=models.EmailSend,
        subject="customer",
        label="email_sends",
        fields=(
            PersonalField("email", Erase.BLANK),
            PersonalField("campaign", KEEP, C.INTERNET),
            PersonalField("status", KEEP, C.INTERNET),
            PersonalField("sent_at", KEEP, C.INTERNET),
            PersonalField("opened_at", KEEP, C.INTERNET),
            PersonalField("open_count", KEEP, C.INTERNET),
            PersonalField("clicked_at", KEEP, C.INTERNET),
            PersonalField("click_count", KEEP, C.INTERNET),
            PersonalField("unsubscribed_at", KEEP, C.INTERNET),
            PersonalField("error", Erase.REDACT, C.INTERNET),
        ),
        not_personal={"message_id": "the provider's opaque id of the message, to match delivery webhooks"},
    ),
    PersonalData(
        model=models.Suppression,
        subject=suppressions_of,
        subject_many=suppressions_of_many,
        label="email_suppressions",
        fields=(
            PersonalField("email", Erase.PSEUDONYM),
            PersonalField("reason", KEEP, C.INTERNET),
            PersonalField("created_at", KEEP, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.Enrollment,
        subject="customer",
        label="sequence_enrollments",
        fields=(
            PersonalField("sequence", KEEP, C.INTERNET),
            PersonalField("status", KEEP, C.INTERNET),
            PersonalField("enrolled_at", KEEP, C.INTERNET),
            PersonalField("finished_at", KEEP, C.INTERNET),
            PersonalField("exit_reason", KEEP, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.StepRun,
        subject="enrollment__customer",
        label="sequence_step_runs",
        fields=(
            PersonalField("step", KEEP, C.INTERNET),
            PersonalField("outcome", KEEP, C.INTERNET),
            PersonalField("detail", Erase.REDACT, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.FormSubmission,
        subject="customer",
        label="form_submissions",
        fields=(
            PersonalField("form", KEEP, C.INTERNET),
            PersonalField("submitted_at", KEEP, C.INTERNET),
            PersonalField("consent_given", KEEP, C.INTERNET),
            # What was typed into the form, {field: value}: the keys stay (they are the form's), values go.
            PersonalField("data", Erase.REDACT, C.INTERNET),
        ),
    ),
    NotPersonal(
        model=models.Campaign,
        fields={
            "name": CONTENT,
            "description": CONTENT,
            "channels": "channel codes",
            "currency": "a currency code",
            "from_name": "the sender shown to recipients: the organization or a staff member",
            "reply_to": "the organization's reply address",
            "send_error": "why a blast stopped (a configuration or provider error)",
            "materialize_bounds": "customer ids where the materialization's slices start (keys, no data)",
            "materialized_slices": "numbers of the slices written",
        },
    ),
    NotPersonal(model=models.CampaignSegment, fields={}),
    NotPersonal(model=models.CostEntry, fields={"description": "what the campaign spent money on"}),
    NotPersonal(
        model=models.EmailTemplate,
        fields={
            "name": CONTENT,
            "description": CONTENT,
            "subject": CONTENT,
            "html_body": CONTENT,
            "text_body": CONTENT,
        },
    ),
    NotPersonal(model=models.Variant, fields={"label": CONTENT, "subject": CONTENT}),
    NotPersonal(model=models.ABTest, fields={"explanation": "the winner's statistics in words (generated)"}),
    NotPersonal(model=models.Sequence, fields={"name": CONTENT, "description": CONTENT}),
    NotPersonal(
        model=models.Step,
        fields={"condition": CONTENT, "update": CONTENT, "task_subject": CONTENT},
    ),
    NotPersonal(
        model=models.LeadForm,
        fields={
            "name": CONTENT,
            "slug": CONTENT,
            "title": CONTENT,
            "intro": CONTENT,
            "fields": "the form's field definitions",
            "consent_text": CONTENT,
            "thank_you_text": CONTENT,
        },
    ),
)
