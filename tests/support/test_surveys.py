"""CSAT and NPS surveys: one CSAT survey per resolved ticket, emailed after commit with a signed link; NPS
to the eligible customers in capped batches, never twice within 90 days; an answer stored once, on the
survey, the ticket and the customer's timeline."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail, signing
from django.db import IntegrityError
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers.models import Customer, Interaction
from support import surveys
from support.models import Survey, Ticket
from support.services.tickets import ticket_set_status
from support.tasks import send_all_nps_surveys, send_nps_surveys
from tests import factories

LINK = re.compile(r"http://[^/\s]+/survey/([^/\s]+)/")


@pytest.fixture
def org(db):
    return factories.organization(time_zone="UTC", name="Acme Support Co")


@pytest.fixture
def agent(org):
    return factories.user(org, role="support_agent", department="billing")


def assigned_ticket(org, agent, **fields):
    ticket = factories.ticket(org, category="billing", **fields)
    with system_context():
        Ticket.objects.filter(pk=ticket.pk).update(assigned_to=agent, assigned_at=timezone.now())
        return Ticket.objects.select_related("customer").get(pk=ticket.pk)


def resolve(org, ticket, capture):
    with capture(execute=True), tenant_context(org.pk):
        return ticket_set_status(ticket=ticket, actor=None, status="resolved")


def surveys_of(org, **filters):
    with system_context():
        return list(Survey.objects.filter(organization=org, **filters).order_by("sent_at", "id"))


def set_customer(customer, **fields):
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(**fields)


# --- CSAT after resolution ----------------------------------------------------------------------------------


def test_resolving_a_ticket_emails_one_csat_survey_with_a_signed_link(
    org, agent, django_capture_on_commit_callbacks
):
    ticket = assigned_ticket(org, agent, subject="Invoice is wrong & late")
    mail.outbox.clear()
    resolve(org, ticket, django_capture_on_commit_callbacks)

    [survey] = surveys_of(org)
    assert survey.kind == "csat"
    assert (survey.ticket_id, survey.customer_id, survey.agent_id) == (
        ticket.pk,
        ticket.customer_id,
        agent.pk,
    )
    assert survey.category == "billing"
    assert survey.responded_at is None and survey.score is None
    assert survey.expires_at - survey.sent_at == surveys.MAX_AGE

    [email] = [m for m in mail.outbox if "survey" in m.body]
    assert email.to == [f"{ticket.customer.first_name} {ticket.customer.last_name} <{ticket.customer.email}>"]
    assert ticket.ticket_number in email.subject and "Invoice is wrong & late" in email.subject
    assert "&amp;" not in email.body  # the plain-text part is not HTML-escaped
    assert email.extra_headers["Auto-Submitted"] == "auto-generated"
    tokens = {LINK.search(line).group(1) for line in email.body.splitlines() if LINK.search(line)}
    assert len(tokens) == 1  # one token, five one-click links (?score=1..5)
    assert [f"?score={n}" in email.body for n in range(1, 6)] == [True] * 5
    link = surveys.read_token(tokens.pop())
    assert (link.organization_id, link.survey_id) == (org.pk, survey.pk)
    html = email.alternatives[0][0]
    assert html.count("/survey/") == 5


def test_a_ticket_gets_one_csat_survey_however_often_it_is_resolved(
    org, agent, django_capture_on_commit_callbacks
):
    ticket = assigned_ticket(org, agent)
    ticket = resolve(org, ticket, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org.pk):
        ticket = ticket_set_status(ticket=ticket, actor=None, status="open")
    mail.outbox.clear()
    resolve(org, ticket, django_capture_on_commit_callbacks)
    assert len(surveys_of(org)) == 1
    assert not [m for m in mail.outbox if "survey" in m.body]
    # Calling the hook again (a retried on-commit, a second worker) creates and sends nothing either.
    assert surveys.survey_send_for_ticket(ticket_id=ticket.pk, organization_id=org.pk) is None
    assert len(surveys_of(org)) == 1


def test_the_database_refuses_a_second_csat_survey_for_a_ticket(org, agent):
    ticket = assigned_ticket(org, agent)
    with system_context():
        Survey.objects.create(
            organization=org, kind="csat", customer=ticket.customer, ticket=ticket, expires_at=timezone.now()
        )
        with pytest.raises(IntegrityError):
            Survey.objects.create(
                organization=org,
                kind="csat",
                customer=ticket.customer,
                ticket=ticket,
                expires_at=timezone.now(),
            )


@pytest.mark.parametrize(
    "change",
    [
        {"email": ""},
        {"processing_restricted": True},
        {"erased_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"anonymized_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    ],
)
def test_no_csat_survey_for_a_customer_who_cannot_be_surveyed(org, agent, change):
    ticket = assigned_ticket(org, agent)
    with system_context():
        Ticket.objects.filter(pk=ticket.pk).update(status="resolved", resolved_at=timezone.now())
    set_customer(ticket.customer, **change)
    assert surveys.survey_send_for_ticket(ticket_id=ticket.pk, organization_id=org.pk) is None
    assert surveys_of(org) == []


def test_no_csat_survey_for_a_ticket_that_is_no_longer_resolved(org, agent):
    ticket = assigned_ticket(org, agent)  # status new: reopened before the hook ran, say
    assert surveys.survey_send_for_ticket(ticket_id=ticket.pk, organization_id=org.pk) is None
    assert surveys_of(org) == []


# --- NPS on a schedule ---------------------------------------------------------------------------------------


def nps_customer(org, **fields):
    customer = factories.customer(org)
    set_customer(
        customer, **{"email_opt_in": True, "lifecycle_stage": "customer", "status": "active", **fields}
    )
    return customer


def run_nps(org, *, now=None, limit=surveys.NPS_BATCH):
    with tenant_context(org.pk):
        return surveys.nps_surveys_send(organization_id=org.pk, now=now, limit=limit)


def test_nps_goes_to_active_opted_in_unrestricted_customers_not_surveyed_in_90_days(
    org, django_capture_on_commit_callbacks
):
    now = timezone.now()
    eligible = {
        "plain": nps_customer(org),
        "champion": nps_customer(org, lifecycle_stage="champion"),
        "asked_100_days_ago": nps_customer(org),
    }
    excluded = {
        "not_opted_in": nps_customer(org, email_opt_in=False),
        "restricted": nps_customer(org, processing_restricted=True),
        "inactive": nps_customer(org, status="inactive"),
        "lead": nps_customer(org, lifecycle_stage="lead"),
        "no_email": nps_customer(org, email=""),
        "erased": nps_customer(org, erased_at=now),
        "asked_30_days_ago": nps_customer(org),
    }
    with system_context():
        for key, days in (("asked_100_days_ago", 100), ("asked_30_days_ago", 30)):
            customer = eligible.get(key) or excluded[key]
            Survey.objects.create(
                organization=org,
                kind="nps",
                customer=customer,
                sent_at=now - dt.timedelta(days=days),
                expires_at=now - dt.timedelta(days=days - 14),
            )
    other_org = factories.organization()
    nps_customer(other_org)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert run_nps(org, now=now) == 3

    sent = surveys_of(org, kind="nps", sent_at=now)
    assert {s.customer_id for s in sent} == {c.pk for c in eligible.values()}
    assert all(s.ticket_id is None and s.expires_at == now + surveys.MAX_AGE for s in sent)
    assert sorted(m.to[0].split("<")[1].rstrip(">") for m in mail.outbox) == sorted(
        c.email for c in eligible.values()
    )
    assert all("?score=0" in m.body and "?score=10" in m.body for m in mail.outbox)
    # A second run the same day finds nobody left.
    assert run_nps(org, now=now) == 0
    assert surveys_of(other_org) == []


def test_nps_batches_are_capped_and_the_next_run_takes_the_rest(org):
    customers = [nps_customer(org) for _ in range(5)]
    assert run_nps(org, limit=2) == 2
    assert run_nps(org, limit=2) == 2
    assert run_nps(org, limit=2) == 1
    assert run_nps(org, limit=2) == 0
    assert sorted(s.customer_id for s in surveys_of(org)) == sorted(c.pk for c in customers)


def test_an_nps_survey_is_credited_to_the_customers_last_resolved_ticket(org, agent):
    other_agent = factories.user(org, role="support_agent")
    customer = nps_customer(org)
    lonely = nps_customer(org)
    earlier = assigned_ticket(org, other_agent, customer=customer)
    latest = assigned_ticket(org, agent, customer=customer)
    with system_context():
        Ticket.objects.filter(pk=earlier.pk).update(
            status="resolved", resolved_at=timezone.now() - dt.timedelta(days=3), category="technical"
        )
        Ticket.objects.filter(pk=latest.pk).update(
            status="resolved", resolved_at=timezone.now() - dt.timedelta(days=1), category="billing"
        )
    assert run_nps(org) == 2
    by_customer = {s.customer_id: s for s in surveys_of(org)}
    assert (by_customer[customer.pk].agent_id, by_customer[customer.pk].category) == (agent.pk, "billing")
    assert (by_customer[lonely.pk].agent_id, by_customer[lonely.pk].category) == (None, "")


def test_the_nps_tasks_survey_each_organization_in_its_own_context(org):
    other = factories.organization()
    nps_customer(org)
    nps_customer(other)
    assert send_nps_surveys.apply(kwargs={"organization_id": str(org.pk)}).get() == 1
    assert send_nps_surveys.apply(kwargs={"organization_id": str(org.pk)}).get() == 0
    assert len(surveys_of(org)) == 1 and surveys_of(other) == []
    assert send_all_nps_surveys.apply().get() >= 2  # one task per trial or active organization


# --- Answering ------------------------------------------------------------------------------------------------


def csat_survey(org, agent, **fields):
    ticket = assigned_ticket(org, agent)
    with system_context():
        Ticket.objects.filter(pk=ticket.pk).update(status="resolved", resolved_at=timezone.now())
    survey = surveys.survey_send_for_ticket(ticket_id=ticket.pk, organization_id=org.pk)
    if fields:
        with system_context():
            Survey.objects.filter(pk=survey.pk).update(**fields)
            survey.refresh_from_db()
    return survey


def answer(org, survey, score, comment=""):
    with tenant_context(org.pk):
        return surveys.survey_answer(survey=survey, score=score, comment=comment)


def test_an_answer_lands_on_the_survey_the_ticket_and_the_customers_timeline(org, agent):
    survey = csat_survey(org, agent)
    answered = answer(org, survey, 2, "  Took three days.  ")
    assert (answered.score, answered.comment) == (2, "Took three days.")
    assert answered.responded_at is not None
    with system_context():
        ticket = Ticket.objects.get(pk=survey.ticket_id)
        interaction = Interaction.objects.filter(
            customer_id=survey.customer_id, interaction_type="form_submission"
        ).get()
    assert ticket.satisfaction_rating == 2
    assert (interaction.channel, interaction.sentiment, interaction.notes) == (
        "web",
        "negative",
        "Took three days.",
    )
    assert "2/5" in interaction.outcome and ticket.ticket_number in interaction.outcome


def test_a_survey_takes_one_answer_even_from_a_stale_copy(org, agent):
    survey = csat_survey(org, agent)
    stale = Survey.objects.model(
        **{f.attname: getattr(survey, f.attname) for f in Survey._meta.concrete_fields}
    )
    answer(org, survey, 5, "Great")
    with pytest.raises(surveys.SurveyClosed) as closed:
        answer(org, stale, 1, "Changed my mind")  # a second submission that read the survey before the first
    assert closed.value.reason == "answered"
    [stored] = surveys_of(org)
    assert (stored.score, stored.comment) == (5, "Great")
    with system_context():
        assert Ticket.objects.get(pk=survey.ticket_id).satisfaction_rating == 5
        assert (
            Interaction.objects.filter(
                customer_id=survey.customer_id, interaction_type="form_submission"
            ).count()
            == 1
        )


def test_an_expired_survey_takes_no_answer(org, agent):
    survey = csat_survey(org, agent, expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(surveys.SurveyClosed) as closed:
        answer(org, survey, 4)
    assert closed.value.reason == "expired"
    assert surveys_of(org)[0].responded_at is None


@pytest.mark.parametrize(("kind", "bad"), [("csat", 0), ("csat", 6), ("nps", -1), ("nps", 11)])
def test_a_score_outside_the_scale_is_refused(org, agent, kind, bad):
    survey = csat_survey(org, agent, kind=kind) if kind == "csat" else None
    if survey is None:
        customer = nps_customer(org)
        run_nps(org)
        [survey] = surveys_of(org, customer=customer)
    with pytest.raises(ValueError):
        answer(org, survey, bad)


@pytest.mark.parametrize(
    ("kind", "score", "sentiment"),
    [
        ("csat", 1, "negative"),
        ("csat", 3, "neutral"),
        ("csat", 4, "positive"),
        ("nps", 0, "negative"),
        ("nps", 6, "negative"),
        ("nps", 7, "neutral"),
        ("nps", 8, "neutral"),
        ("nps", 9, "positive"),
    ],
)
def test_sentiment_and_nps_groups_follow_the_scales(kind, score, sentiment):
    assert surveys.sentiment_for(kind, score) == sentiment


def test_tokens_name_their_survey_and_refuse_tampering_and_age(org, agent):
    survey = csat_survey(org, agent)
    token = surveys.make_token(survey)
    assert surveys.read_token(token).survey_id == survey.pk
    with pytest.raises(signing.BadSignature):
        surveys.read_token(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(signing.BadSignature):
        surveys.read_token(signing.dumps({"o": org.pk.hex, "s": survey.pk.hex}, salt="another.salt"))
    with pytest.raises(signing.BadSignature):
        surveys.read_token(signing.dumps({"o": "nope"}, salt=surveys.SALT))
    with pytest.raises(signing.SignatureExpired):
        surveys.read_token(token, max_age=dt.timedelta(seconds=-1))


def test_the_nps_beat_entry_is_scheduled_weekly_and_documented():
    from pathlib import Path

    from django.conf import settings

    from crm.celery import app

    entry = app.conf.beat_schedule["nps-surveys"]
    assert entry["task"] == send_all_nps_surveys.name
    assert entry["schedule"].day_of_week == {1}
    operations = (Path(settings.BASE_DIR) / "docs" / "operations.md").read_text()
    assert "`nps-surveys`" in operations and "`support.tasks.send_all_nps_surveys`" in operations
