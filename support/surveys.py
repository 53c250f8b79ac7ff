"""CSAT and NPS surveys: sent by email with a signed, expiring link, answered once on a public page.

The link. `/survey/<token>/`, where the token is `django.core.signing.dumps({"o": organization, "s": survey},
salt=SALT)`: a timestamped HMAC (SECRET_KEY) over the organization and survey ids, nothing stored. A token
that does not verify (tampered, cut, signed with another salt) is refused with 400; one older than
`MAX_AGE` with 410, and so is a survey past its stored `expires_at` (the two agree: both are `MAX_AGE` from
sending). The token names its organization, so the public view opens that organization's tenant context
and row-level security confines the survey lookup to it (a token never reaches another organization's
rows). Whoever holds the link may answer: it is the customer's bearer credential, like a password-reset
link, and shows only the question, the ticket's number and subject, and the organization's name.

Answered once. The answer is one conditional `UPDATE ... WHERE responded_at IS NULL AND expires_at > now()
RETURNING`: two submissions racing each other store one answer, and the other is told the survey was
answered. The answer lands on the survey, on the ticket (`satisfaction_rating`, CSAT), and on the customer's
timeline (a form-submission interaction with a sentiment).

Sending. CSAT: `survey_send_for_ticket` (called by the ticket services once a resolution commits) creates at
most one survey per ticket (the partial unique constraint `support_surveys_one_csat_per_ticket`; a reopened
and re-resolved ticket is not surveyed twice). NPS: `nps_surveys_send` (weekly beat) picks a capped batch of
active customers who consent to email marketing (compliance.selectors.consent: a relationship survey sent
in bulk is treated as marketing mail), are not processing-restricted, and had no NPS survey in the last
`NPS_INTERVAL_DAYS`, set-based in one `INSERT ... SELECT`, serialized per organization by an advisory lock.
Emails go out through Django's email backend after the transaction that created the survey commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consent_sql, may_process
from crm.models import Organization
from crm.tenancy import tenant_context
from customers.models import Customer, LifecycleStage
from support.models import DONE_STATUSES, Survey, Ticket

logger = logging.getLogger(__name__)

SALT = "support.surveys.link"
MAX_AGE = dt.timedelta(days=14)  # how long a survey link (and the survey) stays open
NPS_INTERVAL_DAYS = 90  # a customer is asked for NPS at most once in this many days
NPS_BATCH = 200  # customers surveyed per organization and run (the rest wait for the next run)
NPS_STAGES = (LifecycleStage.CUSTOMER, LifecycleStage.CHAMPION)
COMMENT_MAX_CHARS = 2000

SCALES = {Survey.Kind.CSAT: range(1, 6), Survey.Kind.NPS: range(0, 11)}


class SurveyClosed(Exception):
    """The survey cannot take an answer: answered already, or expired."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "answered" | "expired"


@dataclass(frozen=True)
class SurveyLink:
    organization_id: uuid.UUID
    survey_id: uuid.UUID


# --- Tokens -------------------------------------------------------------------------------------------------


def make_token(survey: Survey) -> str:
    """The signed, timestamped token of the survey's public link."""
    return signing.dumps({"o": survey.organization_id.hex, "s": survey.pk.hex}, salt=SALT)


def read_token(token: str, *, max_age: dt.timedelta = MAX_AGE) -> SurveyLink:
    """The survey a token names. Raises `signing.SignatureExpired` when it is older than `max_age` and
    `signing.BadSignature` when it does not verify or does not name a survey."""
    payload = signing.loads(token, salt=SALT, max_age=max_age)
    try:
        return SurveyLink(organization_id=uuid.UUID(payload["o"]), survey_id=uuid.UUID(payload["s"]))
    except (KeyError, TypeError, ValueError) as error:
        raise signing.BadSignature("not a survey token") from error


def survey_url(survey: Survey, *, score: int | None = None) -> str:
    """The absolute public link (with a preselected score for the one-click ratings in the email)."""
    url = f"{settings.CRM_BASE_URL}{reverse('survey:answer', args=[make_token(survey)])}"
    return url if score is None else f"{url}?score={score}"


# --- Classification -----------------------------------------------------------------------------------------


def nps_group(score: int) -> str:
    """promoter (9-10), passive (7-8) or detractor (0-6)."""
    if score >= 9:
        return "promoter"
    return "passive" if score >= 7 else "detractor"


def sentiment_for(kind: str, score: int) -> str:
    """The interaction's sentiment: CSAT 4-5 and NPS promoters positive, CSAT 1-2 and detractors negative."""
    if kind == Survey.Kind.CSAT:
        return "positive" if score >= 4 else "negative" if score <= 2 else "neutral"
    return {"promoter": "positive", "passive": "neutral", "detractor": "negative"}[nps_group(score)]


def _reachable(customer: Customer) -> bool:
    # A CSAT survey is service mail about the customer's own ticket, not marketing: it needs no email
    # marketing consent, but never goes to a restricted, erased or anonymized customer.
    return bool(customer.email) and may_process(customer)


# --- Sending ------------------------------------------------------------------------------------------------


def survey_send_for_ticket(*, ticket_id, organization_id) -> Survey | None:
    """After a ticket's resolution commits: its CSAT survey, created once (a second call, or a re-resolved
    ticket, finds the one that exists and sends nothing) and emailed after commit. Nothing is sent for a
    ticket that is no longer done, or a customer with no address, erased, anonymized or restricted.
    Returns the survey created, or None."""
    with tenant_context(organization_id):
        ticket = (
            Ticket.objects.select_related("customer")
            .filter(pk=ticket_id, organization_id=organization_id)
            .first()
        )
        if ticket is None or ticket.status not in DONE_STATUSES or not _reachable(ticket.customer):
            return None
        now = timezone.now()
        # ON CONFLICT DO NOTHING against the partial unique index (one CSAT per ticket): concurrent or
        # repeated calls create one survey, and only the call that created it sends the email.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO support_surveys
                    (id, organization_id, kind, customer_id, ticket_id, agent_id, category, sent_at, expires_at,
                     comment)
                VALUES (%s, %s, 'csat', %s, %s, %s, %s, %s, %s, '')
                ON CONFLICT DO NOTHING
                RETURNING id
                """,
                [
                    _new_id(),
                    organization_id,
                    ticket.customer_id,
                    ticket.pk,
                    ticket.assigned_to_id,
                    ticket.category,
                    now,
                    now + MAX_AGE,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        survey = Survey.objects.get(pk=row[0], organization_id=organization_id)
        _email_on_commit(survey)
        return survey


def _new_id() -> uuid.UUID:
    return Survey._meta.pk.default()


def _email_on_commit(survey: Survey) -> None:
    survey_id, organization_id = survey.pk, survey.organization_id
    transaction.on_commit(
        lambda: survey_email_send(survey_id=survey_id, organization_id=organization_id), robust=True
    )


NPS_INSERT_SQL = f"""
INSERT INTO support_surveys
    (id, organization_id, kind, customer_id, ticket_id, agent_id, category, sent_at, expires_at, comment)
SELECT gen_random_uuid(), c.organization_id, 'nps', c.id, NULL, last.assigned_to_id, coalesce(last.category, ''),
       %(now)s, %(expires)s, ''
FROM customers c
LEFT JOIN LATERAL (
    -- Credit the answer to whoever last resolved one of the customer's tickets (reports by agent and
    -- category); none: unattributed.
    SELECT t.assigned_to_id, t.category FROM support_tickets t
    WHERE t.organization_id = c.organization_id AND t.customer_id = c.id AND t.resolved_at IS NOT NULL
    ORDER BY t.resolved_at DESC, t.id DESC LIMIT 1
) last ON true
WHERE c.organization_id = %(org)s AND c.status = 'active' AND c.lifecycle_stage = ANY(%(stages)s)
  AND {consent_sql(ConsentPurpose.EMAIL_MARKETING, "c")} AND c.email <> ''
  AND NOT EXISTS (
      SELECT 1 FROM support_surveys s
      WHERE s.organization_id = c.organization_id AND s.customer_id = c.id AND s.kind = 'nps'
        AND s.sent_at > %(recent)s
  )
ORDER BY c.last_contact_date DESC NULLS LAST, c.id
LIMIT %(limit)s
RETURNING id
"""


@transaction.atomic
def nps_surveys_send(*, organization_id, now: dt.datetime | None = None, limit: int = NPS_BATCH) -> int:
    """Create NPS surveys for up to `limit` eligible customers of the organization (most recently in
    contact first) and email them after commit; returns how many. Runs under the caller's tenant context.
    Two runs at once are serialized by an advisory lock, so nobody is surveyed twice."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"support.surveys.nps:{organization_id}"],
        )
        cursor.execute(
            NPS_INSERT_SQL,
            {
                "org": organization_id,
                "now": now,
                "expires": now + MAX_AGE,
                "recent": now - dt.timedelta(days=NPS_INTERVAL_DAYS),
                "stages": list(NPS_STAGES),
                "limit": limit,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    for survey_id in ids:
        transaction.on_commit(
            lambda survey_id=survey_id: survey_email_send(
                survey_id=survey_id, organization_id=organization_id
            ),
            robust=True,
        )
    return len(ids)


def _render_text(name: str, context: dict) -> str:
    """A plain-text email body: rendered without HTML escaping (a subject with "&" stays "&"), which the
    template itself may not switch off (tests/security forbids `autoescape off` in templates)."""
    return get_template(name).template.render(Context(context, autoescape=False))


def _sender(organization: Organization) -> str:
    return formataddr((f"{organization.name} Support", parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))


def survey_email_send(*, survey_id, organization_id) -> bool:
    """Email the survey's link to its customer; returns whether an email went out (not for a survey answered,
    expired or deleted meanwhile, or a customer no longer reachable)."""
    from support.mailing import support_address

    with tenant_context(organization_id):
        survey = (
            Survey.objects.select_related("customer", "ticket")
            .filter(pk=survey_id, organization_id=organization_id)
            .first()
        )
        if survey is None or survey.responded_at or survey.expires_at <= timezone.now():
            return False
        customer = survey.customer
        if not _reachable(customer):
            return False
        organization = Organization.objects.get(pk=organization_id)
        scale = SCALES[survey.kind]
        context = {
            "organization": organization,
            "survey": survey,
            "ticket": survey.ticket,
            "customer_name": customer.first_name,
            "url": survey_url(survey),
            "choices": [(score, survey_url(survey, score=score)) for score in scale],
            "expires_at": survey.expires_at,
        }
        if survey.kind == Survey.Kind.CSAT and survey.ticket is not None:
            subject = _("How did we do? %(subject)s [%(number)s]") % {
                "subject": " ".join(survey.ticket.subject.split()),
                "number": survey.ticket.ticket_number,
            }
        else:
            subject = _("How likely are you to recommend %(name)s?") % {"name": organization.name}
        name = " ".join(part for part in (customer.first_name, customer.last_name) if part)
        email = EmailMultiAlternatives(
            subject=subject,
            body=_render_text(f"support/surveys/email_{survey.kind}.txt", context),
            from_email=_sender(organization),
            to=[formataddr((name, customer.email))],
            reply_to=[support_address(organization)],
            headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
        )
        email.attach_alternative(
            render_to_string(f"support/surveys/email_{survey.kind}.html", context), "text/html"
        )
        email.send()
    return True


# --- Answering ----------------------------------------------------------------------------------------------


def validate_score(kind: str, score: int) -> None:
    if score not in SCALES[kind]:
        raise ValueError(f"score {score} is outside the {kind} scale")


@transaction.atomic
def survey_answer(*, survey: Survey, score: int, comment: str = "", now: dt.datetime | None = None) -> Survey:
    """Store the customer's answer, once. Raises `SurveyClosed("answered")` when it was answered (by this or
    a concurrent submission) and `SurveyClosed("expired")` past its expiry. A CSAT answer also sets the
    ticket's satisfaction rating; every answer logs an interaction on the customer's timeline."""
    from customers.services.customers import interaction_log

    validate_score(survey.kind, score)
    now = now or timezone.now()
    comment = (comment or "").strip()[:COMMENT_MAX_CHARS]
    claimed = Survey.objects.filter(
        pk=survey.pk, organization_id=survey.organization_id, responded_at__isnull=True, expires_at__gt=now
    ).update(score=score, comment=comment, responded_at=now)
    if not claimed:
        current = Survey.objects.filter(pk=survey.pk, organization_id=survey.organization_id).first()
        raise SurveyClosed("answered" if current is not None and current.responded_at else "expired")
    survey.refresh_from_db()
    ticket = None
    if survey.kind == Survey.Kind.CSAT and survey.ticket_id:
        Ticket.objects.filter(pk=survey.ticket_id, organization_id=survey.organization_id).update(
            satisfaction_rating=score, updated_at=now
        )
        ticket = Ticket.objects.only("id", "number", "subject").get(
            pk=survey.ticket_id, organization_id=survey.organization_id
        )
    if survey.kind == Survey.Kind.CSAT:
        outcome = _("Satisfaction survey: %(score)d/5") % {"score": score}
        if ticket is not None:
            outcome = f"{outcome} ({ticket.ticket_number})"
    else:
        outcome = _("NPS survey: %(score)d/10") % {"score": score}
    customer = Customer.objects.get(pk=survey.customer_id, organization_id=survey.organization_id)
    interaction_log(
        customer=customer,
        actor=None,  # the customer answered on the public page
        interaction_type="form_submission",
        channel="web",
        outcome=outcome[:200],
        sentiment=sentiment_for(survey.kind, score),
        notes=comment,
        interaction_date=now,
    )
    return survey
