"""The public survey page /survey/<token>/: no login; answered once; tampered, forged, expired and other
organizations' tokens refused with a clear page that shows nothing of anyone's data."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Organization
from crm.tenancy import system_context
from customers.models import Interaction
from support import surveys
from support.models import Survey, Ticket
from tests import factories


@pytest.fixture
def org(db):
    return factories.organization(name="Acme Support Co", time_zone="UTC")


@pytest.fixture
def other_org(db):
    return factories.organization(name="Globex Rival Inc", time_zone="UTC")


def make_survey(org, *, kind="csat", subject="Printer on fire", **fields):
    customer = factories.customer(org)
    ticket = factories.ticket(org, customer=customer, subject=subject) if kind == "csat" else None
    with system_context():
        return Survey.objects.create(
            organization=org,
            kind=kind,
            customer=customer,
            ticket=ticket,
            expires_at=fields.pop("expires_at", timezone.now() + surveys.MAX_AGE),
            **fields,
        )


def url(token: str) -> str:
    return reverse("survey:answer", args=[token])


def stored(survey) -> Survey:
    with system_context():
        return Survey.objects.get(pk=survey.pk)


class OldSigner(signing.TimestampSigner):
    """Signs as if it were 15 days ago (what a link sent then carries)."""

    def timestamp(self):
        return signing.b62_encode(int(time.time() - 15 * 24 * 3600))


def old_token(survey) -> str:
    return OldSigner(salt=surveys.SALT).sign_object({"o": survey.organization_id.hex, "s": survey.pk.hex})


def test_the_page_asks_the_question_with_the_preselected_score(org, client, django_assert_max_num_queries):
    survey = make_survey(org)
    # Two reads (the organization, the survey with its ticket) plus the tenant-context bookkeeping.
    with django_assert_max_num_queries(15):
        response = client.get(url(surveys.make_token(survey)) + "?score=4")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Printer on fire" in body and "Acme Support Co" in body
    assert 'value="4" autocomplete="off" checked' in body
    assert body.count('name="score"') == 5
    assert "noindex" in body
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_an_nps_page_offers_zero_to_ten(org, client):
    survey = make_survey(org, kind="nps")
    body = client.get(url(surveys.make_token(survey))).content.decode()
    assert body.count('name="score"') == 11
    assert "recommend Acme Support Co" in body


def test_answering_stores_once_and_a_second_answer_is_told_already_answered(org, client):
    survey = make_survey(org)
    link = url(surveys.make_token(survey))
    response = client.post(link, {"score": "5", "comment": "Quick and kind"})
    assert response.status_code == 302 and response.url == link
    thanks = client.get(link)
    assert thanks.status_code == 200 and 'data-testid="survey-done"' in thanks.content.decode()
    answered = stored(survey)
    assert (answered.score, answered.comment) == (5, "Quick and kind")

    again = Client().post(link, {"score": "1", "comment": "Overwrite"})
    assert again.status_code == 409
    assert "already been answered" in again.content.decode()
    assert (stored(survey).score, stored(survey).comment) == (5, "Quick and kind")
    with system_context():
        assert Ticket.objects.get(pk=survey.ticket_id).satisfaction_rating == 5
        assert (
            Interaction.objects.filter(
                customer_id=survey.customer_id, interaction_type="form_submission"
            ).count()
            == 1
        )


@pytest.mark.parametrize(
    "data", [{}, {"score": "9"}, {"score": "0"}, {"score": "x"}, {"score": "3", "comment": "x" * 2001}]
)
def test_an_invalid_answer_shows_the_form_again_and_stores_nothing(org, client, data):
    survey = make_survey(org)
    response = client.post(url(surveys.make_token(survey)), data)
    assert response.status_code == 400
    assert 'name="score"' in response.content.decode()
    assert stored(survey).responded_at is None


def tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def test_tampered_and_forged_tokens_are_refused_with_400_and_change_nothing(org, other_org, client):
    survey = make_survey(org)
    victim = make_survey(other_org, subject="Globex secret project")
    token = surveys.make_token(survey)
    _payload, _sep, signature = token.partition(":")
    forged = [
        tampered(token),
        "not-a-token",
        # Another survey's id in the payload, with this token's timestamp and signature.
        signing.b64_encode(f'{{"o":"{victim.organization_id.hex}","s":"{victim.pk.hex}"}}'.encode()).decode()
        + ":"
        + signature,
        # A valid signature with another salt (the knowledge base's, a password reset's ...).
        signing.dumps(
            {"o": victim.organization_id.hex, "s": victim.pk.hex}, salt="support.mailing.ticket-reference"
        ),
    ]
    for bad in forged:
        for method in ("get", "post"):
            response = getattr(client, method)(url(bad), {"score": "1"} if method == "post" else None)
            body = response.content.decode()
            assert response.status_code == 400, bad
            assert 'data-reason="invalid"' in body
            assert "Globex" not in body and "Printer on fire" not in body
    assert stored(survey).responded_at is None and stored(victim).responded_at is None


def test_an_expired_link_or_survey_is_refused_with_410(org, client):
    survey = make_survey(org)
    for method in ("get", "post"):
        response = getattr(client, method)(
            url(old_token(survey)), {"score": "5"} if method == "post" else None
        )
        assert response.status_code == 410
        assert 'data-reason="expired"' in response.content.decode()
    closed = make_survey(org, expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(url(surveys.make_token(closed))).status_code == 410
    assert client.post(url(surveys.make_token(closed)), {"score": "5"}).status_code == 410
    assert stored(survey).responded_at is None and stored(closed).responded_at is None


def test_a_survey_that_no_longer_exists_or_a_suspended_organization_answers_404(org, client):
    survey = make_survey(org)
    token = surveys.make_token(survey)
    with system_context():
        Organization.objects.filter(pk=org.pk).update(status=Organization.Status.SUSPENDED)
    assert client.get(url(token)).status_code == 404
    with system_context():
        Organization.objects.filter(pk=org.pk).update(status=Organization.Status.ACTIVE)
        Survey.objects.filter(pk=survey.pk).delete()
    response = client.get(url(token))
    assert response.status_code == 404 and 'data-reason="missing"' in response.content.decode()


def test_a_signed_token_pairing_one_organization_with_anothers_survey_finds_nothing(
    org, other_org, client, login
):
    """Even a token signed with the real key (a leaked signing key, a bug in token making) cannot reach a
    survey outside the organization it names: the lookup runs under that organization's RLS context."""
    survey = make_survey(org, subject="Acme internal matter")
    mixed = signing.dumps({"o": other_org.pk.hex, "s": survey.pk.hex}, salt=surveys.SALT)
    admin_b = factories.user(other_org, role="admin")
    for visitor in (client, login(admin_b, on=Client())):
        for method in ("get", "post"):
            response = getattr(visitor, method)(url(mixed), {"score": "1"} if method == "post" else None)
            body = response.content.decode()
            assert response.status_code == 404
            assert "Acme internal matter" not in body and "Acme Support Co" not in body
    assert stored(survey).responded_at is None


def test_another_organizations_user_signed_in_sees_only_the_surveys_own_organization(org, other_org, login):
    """The link is the customer's credential: whoever opens it sees that survey's question and
    organization name, never anything of the viewer's own organization (the tenant context is the
    token's, not the session's)."""
    survey = make_survey(org)
    factories.ticket(other_org, subject="Globex private ticket")
    client = login(factories.user(other_org, role="admin"), on=Client())
    body = client.get(url(surveys.make_token(survey))).content.decode()
    assert "Acme Support Co" in body
    assert "Globex" not in body
    assert client.post(url(surveys.make_token(survey)), {"score": "4"}).status_code == 302
    with system_context():
        assert Survey.objects.filter(organization=other_org).count() == 0
    assert stored(survey).score == 4
