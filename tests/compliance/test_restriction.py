"""Restriction and objection (the issue's test): a processing-restricted customer and an objecting customer
(consent withdrawn for email marketing and profiling) are left out of a campaign send's materialized
recipients, a sequence, a segment refresh and scoring, while a control customer beside them is included."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from compliance.models import ConsentPurpose, ConsentSource
from compliance.services.consent import consent_record
from crm.tenancy import system_context, tenant_context
from customers import scoring
from customers.models import Customer, SegmentMember
from customers.services import segments as segment_services
from marketing.models import Campaign, EmailSend, Enrollment, StepRun
from marketing.sending import start_campaign_send
from marketing.sequences import advance_due
from marketing.services import sequences as sequence_services
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def trio(org_a):
    """(control, restricted, objecting): all three VIP leads opted in to email; then one is restricted and
    one objects to email marketing and profiling (through consent records, as a GDPR objection does)."""
    control, restricted, objecting = (
        factories.customer(org_a, first_name=name, email_opt_in=True, vip_status=True, job_title="CEO")
        for name in ("Control", "Restricted", "Objecting")
    )
    with system_context():
        Customer.objects.filter(pk=restricted.pk).update(
            processing_restricted=True, restriction_reason="Accuracy contested", restricted_at=NOW
        )
    with tenant_context(org_a.pk):
        for purpose in (ConsentPurpose.EMAIL_MARKETING, ConsentPurpose.PROFILING):
            consent_record(
                customer=objecting,
                purpose=purpose,
                granted=False,
                source=ConsentSource.REQUEST,
                proof="GDPR-00001",
            )
    with tenant_context(org_a.pk):
        return tuple(Customer.objects.get(pk=c.pk) for c in (control, restricted, objecting))


def test_a_campaign_send_materializes_only_the_control(org_a, trio):
    control, _restricted, _objecting = trio
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *trio)])
    with tenant_context(org_a.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_at=timezone.now())
        assert start_campaign_send(campaign_id=campaign.pk) is not None
        recipients = set(
            EmailSend.objects.filter(campaign_id=campaign.pk).values_list("customer_id", flat=True)
        )
        total = Campaign.objects.get(pk=campaign.pk).recipients_total
    assert recipients == {control.pk}
    assert total == 1


def test_a_sequence_enrolls_and_emails_only_the_control(org_a, trio):
    control, restricted, objecting = trio
    template = mf.email_template(org_a)
    exits = mf.sequence(org_a, steps=[("send_email", {"template": template})])
    keeps = mf.sequence(org_a, steps=[("send_email", {"template": template})], exit_on_unsubscribe=False)
    with tenant_context(org_a.pk):
        assert (
            sequence_services.enrollment_create(sequence=exits, customer=restricted, source="manual") is None
        )
        enrolled = {
            (sequence.pk, c.pk): sequence_services.enrollment_create(
                sequence=sequence, customer=c, source="manual"
            )
            for sequence in (exits, keeps)
            for c in (control, objecting)
        }
        advance_due(organization_id=org_a.pk, now=timezone.now() + datetime.timedelta(minutes=1))
        state = {
            key: (
                Enrollment.objects.get(pk=e.pk).exit_reason,
                list(StepRun.objects.filter(enrollment_id=e.pk).values_list("outcome", flat=True)),
            )
            for key, e in enrolled.items()
        }
        emailed = set(
            EmailSend.objects.filter(campaign_id__in=[exits.campaign_id, keeps.campaign_id]).values_list(
                "customer_id", flat=True
            )
        )
    assert state[(exits.pk, control.pk)] == ("", ["sent"])
    assert state[(exits.pk, objecting.pk)] == ("unsubscribed", [])  # the objection ends it before any step
    assert state[(keeps.pk, control.pk)] == ("", ["sent"])
    assert state[(keeps.pk, objecting.pk)] == ("", ["skipped"])  # no exit rule: the step still sends nothing
    assert emailed == {control.pk}


def test_a_customer_objecting_to_profiling_is_not_enrolled_by_lead_score(org_a, trio):
    control, _restricted, _objecting = trio
    with system_context():
        Customer.objects.filter(pk__in=[c.pk for c in trio]).update(lead_score=90)
    sequence = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})], enroll_min_score=80)
    with tenant_context(org_a.pk):
        sequence_services.enrollments_by_triggers(organization_id=org_a.pk)
        enrolled = set(Enrollment.objects.filter(sequence=sequence).values_list("customer_id", flat=True))
    assert enrolled == {control.pk}


def test_a_segment_refresh_keeps_only_the_control(org_a, admin_a, trio):
    control, _restricted, _objecting = trio
    with tenant_context(org_a.pk, user=admin_a):
        segment = segment_services.segment_create(
            organization=org_a,
            actor=admin_a,
            name="VIPs",
            criteria={"match": "all", "rules": [{"field": "vip_status", "op": "is", "value": True}]},
        )
        assert set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)) == {
            control.pk
        }
        # A member who objects later leaves at the next refresh.
        consent_record(
            customer=control, purpose=ConsentPurpose.PROFILING, granted=False, source=ConsentSource.STAFF
        )
        assert segment_services.segment_refresh(segment=segment) == (0, 1)
        assert not SegmentMember.objects.filter(segment=segment).exists()


def test_scoring_rescores_only_the_control_and_leaves_the_others_scores_unchanged(org_a, trio):
    control, restricted, objecting = trio
    with system_context():
        Customer.objects.filter(pk__in=[c.pk for c in trio]).update(lead_score=7, scored_at=None)
    with tenant_context(org_a.pk):
        scored = scoring.score_organization(org_a.pk, now=NOW)
        rows = {
            c.pk: (c.lead_score, c.scored_at) for c in Customer.objects.filter(pk__in=[c.pk for c in trio])
        }
    assert scored == 1
    assert rows[restricted.pk] == (7, None)
    assert rows[objecting.pk] == (7, None)
    assert rows[control.pk][1] == NOW and rows[control.pk][0] != 7
