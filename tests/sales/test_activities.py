"""Activity services (sales/services/activities.py): create, update, complete with the customer timeline and
the one-click follow-up, snooze, delete, and what they do to the deal's last activity."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from customers.models import Interaction
from sales.models import Activity, Opportunity
from sales.services import activities as services
from tests import factories


@pytest.fixture
def rep(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Rita", time_zone="America/New_York")


@pytest.fixture
def deal(org_a, rep):
    return factories.opportunity(org_a, assigned_to=rep, name="Acme renewal")


def _interactions(org, customer) -> list[Interaction]:
    from crm.tenancy import tenant_context

    with tenant_context(org.pk):
        return list(Interaction.objects.filter(customer_id=customer.pk).order_by("interaction_date", "id"))


def _last_activity(org, deal):
    from crm.tenancy import tenant_context

    with tenant_context(org.pk):
        return Opportunity.objects.get(pk=deal.pk).last_activity_at


def test_an_activity_on_a_deal_takes_the_deals_customer_and_the_actor_as_owner(org_a, rep, deal, as_tenant):
    due = timezone.now() + datetime.timedelta(days=2)
    with as_tenant(org_a, rep):
        task = services.activity_create(
            organization=org_a, actor=rep, kind="task", subject="Send the deck", opportunity=deal, due_at=due
        )
    assert (task.customer_id, task.owner_id, task.created_by_id) == (deal.customer_id, rep.pk, rep.pk)
    assert task.completed_at is None and task.due_at == due
    # Scheduling is activity on the deal: its idle clock restarts.
    assert _last_activity(org_a, deal) is not None
    # A task is work, not contact: nothing on the customer timeline.
    assert _interactions(org_a, deal.customer) == []


def test_an_activity_needs_a_deal_or_a_customer_of_the_same_organization(org_a, org_b, rep, as_tenant):
    foreign = factories.customer(org_b)
    with as_tenant(org_a, rep):
        with pytest.raises(ValidationError):
            services.activity_create(organization=org_a, actor=rep, kind="task", subject="Nothing")
        with pytest.raises(ValidationError) as error:
            services.activity_create(
                organization=org_a, actor=rep, kind="call", subject="X", customer=foreign
            )
    assert "customer" in error.value.message_dict


def test_support_agents_cannot_create_activities(org_a, deal, as_tenant):
    agent = factories.user(org_a, role="support_agent")
    with as_tenant(org_a, agent), pytest.raises(PermissionDenied):
        services.activity_create(organization=org_a, actor=agent, kind="task", subject="X", opportunity=deal)


def test_a_note_is_done_when_written_and_lands_on_the_customer_timeline_naming_the_deal(
    org_a, rep, deal, as_tenant
):
    with as_tenant(org_a, rep):
        note = services.activity_create(
            organization=org_a,
            actor=rep,
            kind="note",
            subject="Budget",
            description="They have budget in Q3",
            opportunity=deal,
            reminder_at=timezone.now(),
        )
    assert note.completed_at is not None and note.reminder_at is None
    (logged,) = _interactions(org_a, deal.customer)
    assert logged.interaction_type == "note" and logged.logged_by_id == rep.pk
    assert "They have budget in Q3" in logged.notes and "Opportunity: Acme renewal" in logged.notes


@pytest.mark.parametrize(
    ("kind", "interaction_type"),
    [("call", "call"), ("meeting", "meeting"), ("email", "email_sent"), ("task", None)],
)
def test_completing_logs_the_interaction_once_with_its_outcome(
    org_a, rep, deal, as_tenant, kind, interaction_type
):
    with as_tenant(org_a, rep):
        planned = services.activity_create(
            organization=org_a, actor=rep, kind=kind, subject=f"Planned {kind}", opportunity=deal
        )
    assert _interactions(org_a, deal.customer) == []  # scheduled: nothing happened yet
    with as_tenant(org_a, rep):
        done = services.activity_complete(activity=planned, actor=rep, outcome="Agreed on a pilot")
        again = services.activity_complete(activity=planned, actor=rep, outcome="Second click")
    assert done.completed_at is not None and again.completed_at == done.completed_at
    assert again.outcome == "Agreed on a pilot"
    logged = _interactions(org_a, deal.customer)
    if interaction_type is None:
        assert logged == []
    else:
        assert [(i.interaction_type, i.outcome) for i in logged] == [(interaction_type, "Agreed on a pilot")]
        assert logged[0].interaction_date == done.completed_at
        assert "Opportunity: Acme renewal" in logged[0].notes


def test_a_call_logged_as_held_is_done_at_its_time_and_logged_once(org_a, rep, deal, as_tenant):
    held = timezone.now() - datetime.timedelta(hours=3)
    with as_tenant(org_a, rep):
        call = services.activity_create(
            organization=org_a,
            actor=rep,
            kind="call",
            subject="Intro call",
            opportunity=deal,
            done=True,
            completed_at=held,
            outcome="Interested",
        )
        services.activity_complete(activity=call, actor=rep)
    assert call.completed_at == held
    assert [(i.interaction_type, i.interaction_date) for i in _interactions(org_a, deal.customer)] == [
        ("call", held)
    ]


def test_completing_moves_the_deals_last_activity_forward(org_a, rep, deal, as_tenant):
    call = factories.activity(org_a, opportunity=deal, kind="call", owner=rep)
    assert _last_activity(org_a, deal) is None
    before = timezone.now()
    with as_tenant(org_a, rep):
        services.activity_complete(activity=call, actor=rep)
    assert _last_activity(org_a, deal) >= before


def test_a_customer_only_activity_reaches_the_timeline_without_a_deal(org_a, rep, as_tenant):
    customer = factories.customer(org_a)
    with as_tenant(org_a, rep):
        meeting = services.activity_create(
            organization=org_a, actor=rep, kind="meeting", subject="Coffee", customer=customer
        )
        services.activity_complete(activity=meeting, actor=rep, outcome="Good chat")
    (logged,) = _interactions(org_a, customer)
    assert logged.interaction_type == "meeting" and "Opportunity" not in logged.notes


def test_completing_a_call_offers_one_follow_up_task_due_in_n_days_in_the_actors_zone(
    org_a, rep, deal, as_tenant
):
    call = factories.activity(org_a, opportunity=deal, kind="call", owner=rep, subject="Discovery")
    with as_tenant(org_a, rep):
        done = services.activity_complete(activity=call, actor=rep)
        assert services.offers_follow_up(done)
        follow_up = services.activity_follow_up_create(activity=done, actor=rep, days=2)
        second_click = services.activity_follow_up_create(activity=done, actor=rep, days=5)
        tasks = list(Activity.objects.filter(follow_up_of=call))
    new_york = zoneinfo.ZoneInfo("America/New_York")
    expected_day = datetime.datetime.now(new_york).date() + datetime.timedelta(days=2)
    assert follow_up.pk == second_click.pk and tasks == [follow_up]
    assert follow_up.kind == "task" and follow_up.subject == "Follow up: Discovery"
    assert follow_up.due_at.astimezone(new_york) == datetime.datetime.combine(
        expected_day, datetime.time(9), tzinfo=new_york
    )
    assert (follow_up.opportunity_id, follow_up.customer_id, follow_up.owner_id) == (
        deal.pk,
        deal.customer_id,
        rep.pk,
    )
    assert follow_up.completed_at is None


def test_only_a_done_call_or_meeting_offers_a_follow_up(org_a, rep, deal, as_tenant):
    open_call = factories.activity(org_a, opportunity=deal, kind="call", owner=rep)
    done_task = factories.activity(
        org_a, opportunity=deal, kind="task", owner=rep, completed_at=timezone.now()
    )
    with as_tenant(org_a, rep):
        for activity in (open_call, done_task):
            with pytest.raises(ValidationError):
                services.activity_follow_up_create(activity=activity, actor=rep)


def test_changing_the_reminder_time_arms_it_again(org_a, rep, deal, as_tenant):
    then = timezone.now() - datetime.timedelta(hours=1)
    task = factories.activity(org_a, opportunity=deal, owner=rep, reminder_at=then, reminded_at=then)
    later = timezone.now() + datetime.timedelta(days=1)
    with as_tenant(org_a, rep):
        same = services.activity_update(activity=task, actor=rep, subject="Renamed")
        assert same.reminded_at == then  # nothing about the reminder changed
        moved = services.activity_update(activity=task, actor=rep, reminder_at=later)
    assert (moved.reminder_at, moved.reminded_at, moved.subject) == (later, None, "Renamed")


def test_a_done_activity_keeps_its_type(org_a, rep, deal, as_tenant):
    call = factories.activity(org_a, opportunity=deal, kind="call", owner=rep, completed_at=timezone.now())
    with as_tenant(org_a, rep), pytest.raises(ValidationError):
        services.activity_update(activity=call, actor=rep, kind="meeting")


def test_snoozing_moves_the_due_time_and_the_reminder(org_a, rep, deal, as_tenant):
    now = timezone.now()
    task = factories.activity(
        org_a, opportunity=deal, owner=rep, due_at=now, reminder_at=now, reminded_at=now
    )
    until = now + datetime.timedelta(hours=1)
    with as_tenant(org_a, rep):
        snoozed = services.activity_snooze(activity=task, actor=rep, until=until)
    assert (snoozed.due_at, snoozed.reminder_at, snoozed.reminded_at) == (until, until, None)


def test_snooze_choices_are_working_mornings_in_the_users_zone():
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    now = datetime.datetime(2025, 3, 7, 22, 30, tzinfo=datetime.UTC)  # Friday 23:30 in Berlin
    choices = services.snooze_choices(now=now, zone=zone)
    assert choices["1h"][1] == now + datetime.timedelta(hours=1)
    assert choices["tomorrow"][1] == datetime.datetime(2025, 3, 8, 9, 0, tzinfo=zone)
    assert choices["3d"][1] == datetime.datetime(2025, 3, 10, 9, 0, tzinfo=zone)
    assert choices["next_week"][1] == datetime.datetime(2025, 3, 10, 9, 0, tzinfo=zone)


def test_only_the_owner_the_author_or_a_manager_may_delete(org_a, rep, deal, as_tenant):
    other_rep = factories.user(org_a, role="sales_rep")
    manager = factories.user(org_a, role="sales_manager")
    mine, theirs = (factories.activity(org_a, opportunity=deal, owner=rep) for _ in range(2))
    with as_tenant(org_a, other_rep), pytest.raises(PermissionDenied):
        services.activity_delete(activity=mine, actor=other_rep)
    with as_tenant(org_a, rep):
        services.activity_delete(activity=mine, actor=rep)
    with as_tenant(org_a, manager):
        services.activity_delete(activity=theirs, actor=manager)
        assert not Activity.objects.filter(opportunity=deal).exists()


def test_merging_customers_moves_their_activities(org_a, rep, as_tenant):
    source, target = factories.customer(org_a), factories.customer(org_a)
    activity = factories.activity(org_a, customer=source, owner=rep)
    with as_tenant(org_a, rep):
        assert services.activities_count(organization_id=org_a.pk, customer_id=source.pk) == 1
        moved = services.activities_reassign(
            organization_id=org_a.pk, source_id=source.pk, target_id=target.pk
        )
        assert moved == 1 and Activity.objects.get(pk=activity.pk).customer_id == target.pk
