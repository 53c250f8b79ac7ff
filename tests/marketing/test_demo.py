"""The marketing demo data: campaigns in every status whose counters agree with their email_sends rows, a
decided A/B test, a running sequence and a lead form with submissions."""

from __future__ import annotations

from collections import Counter

from crm.models import User
from crm.tenancy import tenant_context
from customers.demo import seed_customers, seed_segments
from marketing.demo import seed_marketing
from marketing.models import ABTest, Campaign, EmailSend, Enrollment, FormSubmission, LeadForm, Sequence
from tests import factories


def test_demo_marketing_covers_every_status_and_its_counters_match_the_sends(db):
    org = factories.organization(slug="demo-mkt", name="Demo Marketing")
    factories.team(org)
    with tenant_context(org.pk):
        users = list(User.objects.filter(organization=org))
        seed_customers(organization=org, users=users, count=60)
        seed_segments(organization=org)
        assert seed_marketing(organization=org, users=users) == 6
        assert seed_marketing(organization=org, users=users) == 0  # idempotent

        campaigns = list(Campaign.objects.all())
        assert {c.status for c in campaigns} == set(Campaign.Status.values)
        sends = list(EmailSend.objects.all())
        assert sends
        for campaign in campaigns:
            rows = [s for s in sends if s.campaign_id == campaign.pk]
            assert campaign.recipients_total == len(rows)
            assert campaign.opened_count == sum(1 for s in rows if s.opened_at)
            assert campaign.clicked_count == sum(1 for s in rows if s.clicked_at)
            assert campaign.bounced_count == sum(1 for s in rows if s.status == "bounced")
            assert campaign.actual_cost == sum((e.amount for e in campaign.cost_entries.all()), start=0)
        # Every click is also an open, and each campaign send went to a recipient once.
        assert all(s.opened_at for s in sends if s.clicked_at)
        per_recipient = Counter((s.campaign_id, s.customer_id) for s in sends if s.step_run_id is None)
        assert max(per_recipient.values()) == 1

        test = ABTest.objects.get()
        assert test.status == ABTest.Status.DECIDED and test.winner is not None
        assert Sequence.objects.get().status == Sequence.Status.ACTIVE
        assert {e.status for e in Enrollment.objects.all()} >= {Enrollment.Status.ACTIVE}
        form = LeadForm.objects.get()
        assert form.submission_count == FormSubmission.objects.filter(form=form).count() > 0
