"""Drip sequences: each step kind, branches both ways, waits and exits on a fake clock, a pass run twice
advancing once, enrollment (one customer, by segment, by score) idempotent and never of a restricted
customer, and the builder's step validation."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.models import AuditLog
from crm.tenancy import system_context, tenant_context
from customers.models import Customer, LifecycleChange, Segment, SegmentMember
from marketing.models import EmailSend, Enrollment, Sequence, Step, StepRun, Suppression
from marketing.sequences import advance_due
from marketing.services import sequences as services
from sales.models import Activity
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def _customer(org, **fields):
    fields.setdefault("email_opt_in", True)
    return factories.customer(org, **fields)


def _enroll(sequence, customer, *, now=T0, source="manual"):
    with tenant_context(sequence.organization_id):
        return services.enrollment_create(sequence=sequence, customer=customer, source=source, now=now)


def _advance(org, now):
    with tenant_context(org.pk):
        return advance_due(organization_id=org.pk, now=now)


def _state(enrollment):
    with tenant_context(enrollment.organization_id):
        enrollment.refresh_from_db()
        runs = list(
            StepRun.objects.filter(enrollment=enrollment).select_related("step").order_by("step__position")
        )
    return enrollment, [(r.step.position, r.outcome) for r in runs]


def _emails(enrollment) -> list[EmailSend]:
    with tenant_context(enrollment.organization_id):
        runs = StepRun.objects.filter(enrollment=enrollment).values("pk")
        return list(EmailSend.objects.filter(step_run_id__in=runs))


def _set_customer(customer, **fields):
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(**fields)


# --- Each step kind --------------------------------------------------------------------------------------------


def test_send_email_step_queues_one_email_for_the_step_run_and_completes(org_a):
    template = mf.email_template(org_a)
    sequence = mf.sequence(org_a, steps=[("send_email", {"template": template})])
    customer = _customer(org_a)
    enrollment = _enroll(sequence, customer)

    result = _advance(org_a, T0)

    enrollment, runs = _state(enrollment)
    assert runs == [(1, StepRun.Outcome.SENT)]
    assert enrollment.status == Enrollment.Status.COMPLETED
    assert enrollment.finished_at == T0
    [email] = _emails(enrollment)
    assert email.customer_id == customer.pk
    assert email.campaign_id == sequence.campaign_id
    assert email.email == customer.email
    assert result.steps == 1 and result.completed == 1


def test_send_email_to_a_customer_who_may_not_be_emailed_is_skipped_not_sent(org_a):
    template = mf.email_template(org_a)
    sequence = mf.sequence(org_a, steps=[("send_email", {"template": template})], exit_on_unsubscribe=False)
    customer = _customer(org_a, email_opt_in=False)
    enrollment = _enroll(sequence, customer)

    _advance(org_a, T0)

    enrollment, runs = _state(enrollment)
    assert runs == [(1, StepRun.Outcome.SKIPPED)]
    assert _emails(enrollment) == []


def test_wait_holds_the_enrollment_until_the_fake_clock_reaches_it(org_a):
    sequence = mf.sequence(
        org_a,
        steps=[
            ("wait", {"wait_days": 3}),
            ("update_field", {"update": {"field": "tags_add", "value": "nurtured"}}),
        ],
    )
    customer = _customer(org_a)
    enrollment = _enroll(sequence, customer)

    _advance(org_a, T0)
    enrollment, runs = _state(enrollment)
    assert runs == [(1, StepRun.Outcome.WAITED)]
    assert enrollment.next_position == 2
    assert enrollment.next_run_at == T0 + 3 * DAY

    _advance(org_a, T0 + 3 * DAY - datetime.timedelta(seconds=1))
    assert _state(enrollment)[1] == [(1, StepRun.Outcome.WAITED)]

    _advance(org_a, T0 + 3 * DAY)
    enrollment, runs = _state(enrollment)
    assert runs == [(1, StepRun.Outcome.WAITED), (2, StepRun.Outcome.UPDATED)]
    assert enrollment.status == Enrollment.Status.COMPLETED
    with system_context():
        assert Customer.objects.get(pk=customer.pk).tags == ["nurtured"]


def _branch_sequence(org, condition):
    """1 branch (else 3) · 2 tag "yes" · 3 tag "after"."""
    return mf.sequence(
        org,
        steps=[
            ("branch", {"condition": condition, "else_position": 3}),
            ("update_field", {"update": {"field": "tags_add", "value": "yes"}}),
            ("update_field", {"update": {"field": "tags_add", "value": "after"}}),
        ],
    )


def _tags(customer):
    with system_context():
        return Customer.objects.get(pk=customer.pk).tags


def test_branch_on_score_goes_on_when_met_and_jumps_when_not(org_a):
    sequence = _branch_sequence(org_a, {"kind": "score_at_least", "value": 50})
    high, low, exact = _customer(org_a), _customer(org_a), _customer(org_a)
    _set_customer(high, lead_score=80)
    _set_customer(low, lead_score=49)
    _set_customer(exact, lead_score=50)
    enrollments = [_enroll(sequence, c) for c in (high, low, exact)]

    _advance(org_a, T0)

    assert _state(enrollments[0])[1] == [(1, "branch_yes"), (2, "updated"), (3, "updated")]
    assert _state(enrollments[1])[1] == [(1, "branch_no"), (3, "updated")]
    assert _state(enrollments[2])[1] == [(1, "branch_yes"), (2, "updated"), (3, "updated")]
    assert _tags(high) == ["after", "yes"]
    assert _tags(low) == ["after"]


def test_branch_on_lifecycle_stage_both_ways(org_a):
    sequence = _branch_sequence(org_a, {"kind": "lifecycle_stage_in", "value": ["customer", "champion"]})
    match, other = _customer(org_a, lifecycle_stage="champion"), _customer(org_a, lifecycle_stage="lead")
    e_match, e_other = _enroll(sequence, match), _enroll(sequence, other)

    _advance(org_a, T0)

    assert [p for p, _ in _state(e_match)[1]] == [1, 2, 3]
    assert [p for p, _ in _state(e_other)[1]] == [1, 3]


@pytest.mark.parametrize(
    ("kind", "column"), [("opened_previous", "opened_at"), ("clicked_previous", "clicked_at")]
)
def test_branch_on_the_previous_email_opened_or_clicked(org_a, kind, column):
    """1 send · 2 wait 2 days · 3 branch (else 5) · 4 tag "engaged" · 5 tag "done"."""
    template = mf.email_template(org_a)
    sequence = mf.sequence(
        org_a,
        steps=[
            ("send_email", {"template": template}),
            ("wait", {"wait_days": 2}),
            ("branch", {"condition": {"kind": kind}, "else_position": 5}),
            ("update_field", {"update": {"field": "tags_add", "value": "engaged"}}),
            ("update_field", {"update": {"field": "tags_add", "value": "done"}}),
        ],
    )
    engaged, silent = _customer(org_a), _customer(org_a)
    e_engaged, e_silent = _enroll(sequence, engaged), _enroll(sequence, silent)
    _advance(org_a, T0)
    [email] = _emails(e_engaged)
    with tenant_context(org_a.pk):
        EmailSend.objects.filter(pk=email.pk).update(**{column: T0 + DAY})

    _advance(org_a, T0 + 2 * DAY)

    assert [p for p, _ in _state(e_engaged)[1]] == [1, 2, 3, 4, 5]
    assert _state(e_silent)[1][2:] == [(3, "branch_no"), (5, "updated")]
    assert _tags(engaged) == ["done", "engaged"]
    assert _tags(silent) == ["done"]


def test_branch_without_a_target_ends_the_sequence_when_not_met(org_a):
    sequence = mf.sequence(
        org_a,
        steps=[
            ("branch", {"condition": {"kind": "score_at_least", "value": 90}}),
            ("update_field", {"update": {"field": "vip_status", "value": True}}),
        ],
    )
    customer = _customer(org_a)
    enrollment = _enroll(sequence, customer)

    _advance(org_a, T0)

    enrollment, runs = _state(enrollment)
    assert runs == [(1, "branch_no")]
    assert enrollment.status == Enrollment.Status.COMPLETED
    with system_context():
        assert Customer.objects.get(pk=customer.pk).vip_status is False


def test_update_field_steps_go_through_the_customer_service_and_are_audited(org_a):
    owner = factories.user(org_a, role="sales_rep")
    sequence = mf.sequence(
        org_a,
        name="Onboarding",
        steps=[
            ("update_field", {"update": {"field": "lifecycle_stage", "value": "marketing_qualified"}}),
            ("update_field", {"update": {"field": "vip_status", "value": True}}),
            ("update_field", {"update": {"field": "owner", "value": str(owner.pk)}}),
            ("update_field", {"update": {"field": "tags_add", "value": "Webinar"}}),
        ],
    )
    customer = _customer(org_a, lifecycle_stage="lead", tags=["existing"])
    enrollment = _enroll(sequence, customer)

    _advance(org_a, T0)

    assert [o for _, o in _state(enrollment)[1]] == ["updated"] * 4
    with system_context():
        stored = Customer.objects.get(pk=customer.pk)
        change = LifecycleChange.objects.filter(customer=customer).order_by("-changed_at").first()
        audited = AuditLog.objects.filter(
            table_name="customers", record_id=str(customer.pk), operation="UPDATE"
        )
        changed = set().union(*(set(a.changed_fields or []) for a in audited))
    assert stored.lifecycle_stage == "marketing_qualified"
    assert stored.vip_status is True
    assert stored.assigned_to_id == owner.pk
    assert stored.tags == ["existing", "webinar"]
    assert (change.from_stage, change.to_stage, change.reason) == (
        "lead",
        "marketing_qualified",
        "Sequence: Onboarding",
    )
    assert {"lifecycle_stage", "vip_status", "assigned_to_id", "tags"} <= changed


def test_create_task_step_gives_the_owner_a_task_due_in_n_days(org_a):
    owner = factories.user(org_a, role="sales_rep")
    sequence = mf.sequence(org_a, steps=[("create_task", {"task_subject": "Call them", "task_due_days": 2})])
    customer = _customer(org_a, assigned_to=owner)
    enrollment = _enroll(sequence, customer)

    _advance(org_a, T0)

    assert _state(enrollment)[1] == [(1, "task")]
    with system_context():
        [task] = Activity.objects.filter(customer=customer)
    assert (task.kind, task.subject, task.owner_id, task.due_at) == (
        "task",
        "Call them",
        owner.pk,
        T0 + 2 * DAY,
    )
    assert task.completed_at is None


def test_create_task_without_an_owner_is_unassigned(org_a):
    sequence = mf.sequence(org_a, steps=[("create_task", {"task_subject": "Follow up", "task_due_days": 0})])
    customer = _customer(org_a)
    _enroll(sequence, customer)
    _advance(org_a, T0)
    with system_context():
        [task] = Activity.objects.filter(customer=customer)
    assert task.owner_id is None and task.due_at == T0


# --- Exits -----------------------------------------------------------------------------------------------------


def _two_step_sequence(org, **fields):
    template = mf.email_template(org, name=f"T {timezone.now().timestamp()}")
    return mf.sequence(
        org,
        steps=[
            ("send_email", {"template": template}),
            ("wait", {"wait_days": 1}),
            ("send_email", {"template": template}),
        ],
        **fields,
    )


def test_unsubscribed_customer_exits_before_any_step(org_a):
    sequence = _two_step_sequence(org_a)
    suppressed, opted_out = _customer(org_a), _customer(org_a)
    e_suppressed, e_opted_out = _enroll(sequence, suppressed), _enroll(sequence, opted_out)
    with tenant_context(org_a.pk):
        Suppression.objects.create(organization=org_a, email=suppressed.email.lower(), reason="unsubscribed")
    _set_customer(opted_out, email_opt_in=False)

    result = _advance(org_a, T0)

    for enrollment in (e_suppressed, e_opted_out):
        enrollment, runs = _state(enrollment)
        assert (enrollment.status, enrollment.exit_reason, runs) == ("exited", "unsubscribed", [])
        assert _emails(enrollment) == []
    assert result.exited == 2


def test_unsubscribe_mid_sequence_stops_the_next_email(org_a):
    sequence = _two_step_sequence(org_a)
    customer = _customer(org_a)
    enrollment = _enroll(sequence, customer)
    _advance(org_a, T0)
    _set_customer(customer, email_opt_in=False)

    _advance(org_a, T0 + DAY)

    enrollment, runs = _state(enrollment)
    assert enrollment.exit_reason == "unsubscribed"
    assert runs == [(1, "sent"), (2, "waited")]
    assert len(_emails(enrollment)) == 1


def test_conversion_exits_only_for_a_deal_won_after_enrollment(org_a):
    sequence = _two_step_sequence(org_a)
    converted, won_before = _customer(org_a), _customer(org_a)
    early = factories.opportunity(org_a, customer=won_before, stage="Closed won")
    with system_context():
        from sales.models import Opportunity

        Opportunity.objects.filter(pk=early.pk).update(stage_changed_at=T0 - DAY)
    e_converted, e_before = _enroll(sequence, converted), _enroll(sequence, won_before)
    _advance(org_a, T0)
    late = factories.opportunity(org_a, customer=converted, stage="Closed won")
    with system_context():
        Opportunity.objects.filter(pk=late.pk).update(stage_changed_at=T0 + DAY / 2)

    _advance(org_a, T0 + DAY)

    assert _state(e_converted)[0].exit_reason == "converted"
    assert _state(e_before)[0].status == "completed"


def test_reply_exits_on_an_inbound_email_after_enrollment(org_a):
    sequence = _two_step_sequence(org_a)
    replied, called = _customer(org_a), _customer(org_a)
    e_replied, e_called = _enroll(sequence, replied), _enroll(sequence, called)
    _advance(org_a, T0)
    factories.interaction(
        replied, interaction_type="support_ticket", channel="email", interaction_date=T0 + DAY / 2
    )
    # A phone call is not a reply; neither is an inbound email from before the enrollment.
    factories.interaction(called, interaction_type="call", channel="phone", interaction_date=T0 + DAY / 2)
    factories.interaction(
        called, interaction_type="support_ticket", channel="email", interaction_date=T0 - DAY
    )

    _advance(org_a, T0 + DAY)

    assert _state(e_replied)[0].exit_reason == "replied"
    assert _state(e_called)[0].status == "completed"


def test_exits_switched_off_are_not_applied(org_a):
    sequence = mf.sequence(
        org_a,
        steps=[("update_field", {"update": {"field": "tags_add", "value": "kept"}})],
        exit_on_unsubscribe=False,
        exit_on_reply=False,
    )
    customer = _customer(org_a, email_opt_in=False)
    enrollment = _enroll(sequence, customer)
    factories.interaction(customer, interaction_type="support_ticket", channel="email", interaction_date=T0)

    _advance(org_a, T0)

    assert _state(enrollment)[0].status == "completed"


def test_restricted_customer_is_never_enrolled_and_leaves_if_restricted_later(org_a):
    sequence = _two_step_sequence(org_a, exit_on_unsubscribe=False)
    restricted = _customer(org_a, first_name="Kept", last_name="Out")
    _set_customer(restricted, processing_restricted=True)
    with system_context():
        restricted.refresh_from_db()
    assert _enroll(sequence, restricted) is None

    later = _customer(org_a)
    enrollment = _enroll(sequence, later)
    _set_customer(later, processing_restricted=True)
    _advance(org_a, T0)

    enrollment, runs = _state(enrollment)
    assert (enrollment.status, enrollment.exit_reason, runs) == ("exited", "restricted", [])
    with tenant_context(org_a.pk):
        assert not Enrollment.objects.filter(customer=restricted).exists()
        assert not EmailSend.objects.filter(customer_id__in=[restricted.pk, later.pk]).exists()


# --- Idempotence -----------------------------------------------------------------------------------------------


def test_a_pass_run_twice_advances_once(org_a):
    sequence = _two_step_sequence(org_a)
    enrollment = _enroll(sequence, _customer(org_a))

    first = _advance(org_a, T0)
    second = _advance(org_a, T0)

    assert (first.steps, second.enrollments) == (2, 0)
    assert _state(enrollment)[1] == [(1, "sent"), (2, "waited")]
    assert len(_emails(enrollment)) == 1


def test_a_step_already_run_is_never_run_again_and_the_path_follows_its_recorded_outcome(org_a):
    """As if a pass died after recording its runs but the enrollment was handed out again."""
    sequence = _branch_sequence(org_a, {"kind": "score_at_least", "value": 50})
    customer = _customer(org_a)
    enrollment = _enroll(sequence, customer)
    _advance(org_a, T0)  # branch_no (score 0) → step 3
    _set_customer(customer, lead_score=99)
    with tenant_context(org_a.pk):
        Enrollment.objects.filter(pk=enrollment.pk).update(
            status="active", next_position=1, next_run_at=T0, finished_at=None
        )

    _advance(org_a, T0 + DAY)

    enrollment, runs = _state(enrollment)
    assert runs == [(1, "branch_no"), (3, "updated")]
    assert enrollment.status == "completed"
    assert _tags(customer) == ["after"]


def test_paused_sequences_are_not_advanced(org_a):
    sequence = _two_step_sequence(org_a)
    enrollment = _enroll(sequence, _customer(org_a))
    with tenant_context(org_a.pk):
        services.sequence_set_status(sequence=sequence, actor=None, status="paused")

    assert _advance(org_a, T0).enrollments == 0
    assert _state(enrollment)[1] == []


# --- Enrollment ------------------------------------------------------------------------------------------------


def test_enrollment_create_is_idempotent_and_refused_for_draft_sequences(org_a):
    sequence = _two_step_sequence(org_a)
    customer = _customer(org_a)
    first = _enroll(sequence, customer, source="form")
    again = _enroll(sequence, customer, source="manual")
    assert first.pk == again.pk and again.source == "form"
    draft = mf.sequence(org_a, status="draft")
    assert _enroll(draft, customer) is None


def test_enrolling_needs_manage_campaigns(org_a):
    sequence = _two_step_sequence(org_a)
    rep = factories.user(org_a, role="sales_rep")
    with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
        services.enrollment_create(sequence=sequence, customer=_customer(org_a), source="manual", actor=rep)


def test_enrollment_by_segment_and_by_score_is_set_based_and_idempotent(org_a):
    with system_context():
        segment = Segment.objects.create(organization=org_a, name="Webinar", kind=Segment.Kind.STATIC)
    members = [_customer(org_a) for _ in range(3)]
    restricted_member = _customer(org_a)
    _set_customer(restricted_member, processing_restricted=True)
    with system_context():
        for c in [*members, restricted_member]:
            SegmentMember.objects.create(organization=org_a, segment=segment, customer=c)
    high, low = _customer(org_a), _customer(org_a)
    _set_customer(high, lead_score=70)
    _set_customer(low, lead_score=69)
    _set_customer(members[0], lead_score=90)  # in both: enrolled once, by the segment
    by_segment = _two_step_sequence(org_a, enroll_segment=segment)
    by_score = _two_step_sequence(org_a, enroll_min_score=70)
    both = _two_step_sequence(org_a, enroll_segment=segment, enroll_min_score=70)
    _two_step_sequence(org_a, enroll_segment=segment, status="paused")  # not active: enrolls nobody

    with tenant_context(org_a.pk):
        first = services.enrollments_by_triggers(organization_id=org_a.pk, now=T0)
        second = services.enrollments_by_triggers(organization_id=org_a.pk, now=T0 + DAY)

    def enrolled(sequence):
        with tenant_context(org_a.pk):
            return {(e.customer_id, e.source) for e in Enrollment.objects.filter(sequence=sequence)}

    ids = [m.pk for m in members]
    assert enrolled(by_segment) == {(i, "segment") for i in ids}
    assert enrolled(by_score) == {(high.pk, "score"), (members[0].pk, "score")}
    assert enrolled(both) == {(i, "segment") for i in ids} | {(high.pk, "score")}
    assert (first, second) == (3 + 2 + 4, 0)


def test_enrolling_by_hand_skips_restricted_and_foreign_customers(org_a, org_b):
    sequence = _two_step_sequence(org_a)
    ok, restricted, foreign = _customer(org_a), _customer(org_a), _customer(org_b)
    _set_customer(restricted, processing_restricted=True)
    with tenant_context(org_a.pk):
        created, skipped = services.enrollments_create(
            sequence=sequence, actor=None, customer_ids=[ok.pk, restricted.pk, foreign.pk, ok.pk]
        )
        again = services.enrollments_create(sequence=sequence, actor=None, customer_ids=[ok.pk])
        assert list(Enrollment.objects.filter(sequence=sequence).values_list("customer_id", flat=True)) == [
            ok.pk
        ]
    assert (created, skipped) == (1, 2)
    assert again == (0, 1)


# --- The builder's validation ----------------------------------------------------------------------------------


def _draft(org):
    return mf.sequence(org, status="draft")


@pytest.mark.parametrize(
    ("kind", "fields", "error_field"),
    [
        ("send_email", {}, "template"),
        ("wait", {"wait_days": 0}, "wait_days"),
        ("wait", {}, "wait_days"),
        ("branch", {"condition": {"kind": "nonsense"}}, "condition"),
        ("branch", {"condition": {"kind": "score_at_least", "value": 101}}, "condition"),
        ("branch", {"condition": {"kind": "lifecycle_stage_in", "value": ["bogus"]}}, "condition"),
        ("branch", {"condition": {"kind": "opened_previous"}, "else_position": 1}, "else_position"),
        ("branch", {"condition": {"kind": "opened_previous"}, "else_position": 5}, "else_position"),
        ("update_field", {"update": {"field": "password", "value": "x"}}, "update"),
        ("update_field", {"update": {"field": "lifecycle_stage", "value": "bogus"}}, "update"),
        ("update_field", {"update": {"field": "owner", "value": "not-a-user"}}, "update"),
        ("create_task", {"task_subject": " ", "task_due_days": 1}, "task_subject"),
    ],
)
def test_invalid_steps_are_refused_with_a_field_error(org_a, kind, fields, error_field):
    sequence = _draft(org_a)
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.step_create(sequence=sequence, actor=None, kind=kind, **fields)
    assert error_field in error.value.message_dict


def test_a_template_of_another_organization_is_refused(org_a, org_b):
    sequence = _draft(org_a)
    foreign = mf.email_template(org_b)
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        services.step_create(sequence=sequence, actor=None, kind="send_email", template_id=foreign.pk)


def test_activating_needs_a_step(org_a):
    sequence = _draft(org_a)
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        services.sequence_set_status(sequence=sequence, actor=None, status="active")


def _positions(sequence):
    with tenant_context(sequence.organization_id):
        return [
            (s.position, s.kind, s.else_position)
            for s in Step.objects.filter(sequence=sequence).order_by("position")
        ]


def _builder(org):
    """1 branch (else 3) · 2 wait 1 · 3 wait 2 · 4 wait 3, built through the services."""
    sequence = _draft(org)
    with tenant_context(org.pk):
        for days in (1, 2, 3):
            services.step_create(sequence=sequence, actor=None, kind="wait", wait_days=days)
        branch = services.step_create(
            sequence=sequence,
            actor=None,
            kind="branch",
            condition={"kind": "opened_previous"},
            else_position=None,
        )
        services.step_move(step=branch, actor=None, direction="up")
        services.step_move(step=branch, actor=None, direction="up")
        services.step_move(step=branch, actor=None, direction="up")
        branch.refresh_from_db()
        services.step_update(step=branch, actor=None, condition={"kind": "opened_previous"}, else_position=3)
    return sequence


def test_moving_steps_carries_branch_targets_along(org_a):
    sequence = _builder(org_a)
    assert _positions(sequence) == [(1, "branch", 3), (2, "wait", None), (3, "wait", None), (4, "wait", None)]
    with tenant_context(org_a.pk):
        target = Step.objects.get(sequence=sequence, position=3)
        services.step_move(step=target, actor=None, direction="down")
    assert _positions(sequence)[0] == (1, "branch", 4)  # it still jumps to the same step, now 4th


def test_a_move_that_would_make_a_branch_jump_backwards_is_refused(org_a):
    sequence = _builder(org_a)
    with tenant_context(org_a.pk):
        branch = Step.objects.get(sequence=sequence, position=1)
        services.step_move(step=branch, actor=None, direction="down")  # to 2: target 3 still after it
        branch.refresh_from_db()
        with pytest.raises(ValidationError):
            services.step_move(step=branch, actor=None, direction="down")  # to 3, over its own target
    assert _positions(sequence)[:3] == [(1, "wait", None), (2, "branch", 3), (3, "wait", None)]


def test_deleting_a_step_renumbers_and_remaps_branch_targets(org_a):
    sequence = _builder(org_a)
    with tenant_context(org_a.pk):
        services.step_delete(step=Step.objects.get(sequence=sequence, position=2), actor=None)
    assert _positions(sequence) == [(1, "branch", 2), (2, "wait", None), (3, "wait", None)]
    with tenant_context(org_a.pk):
        services.step_delete(step=Step.objects.get(sequence=sequence, position=3), actor=None)
        services.step_delete(step=Step.objects.get(sequence=sequence, position=2), actor=None)
    assert _positions(sequence) == [(1, "branch", None)]


def test_archiving_ends_active_enrollments_and_freezes_the_sequence(org_a):
    sequence = _two_step_sequence(org_a)
    enrollment = _enroll(sequence, _customer(org_a))
    with tenant_context(org_a.pk):
        services.sequence_set_status(sequence=sequence, actor=None, status="archived")
        with pytest.raises(ValidationError):
            services.sequence_set_status(sequence=sequence, actor=None, status="active")
        with pytest.raises(ValidationError):
            services.step_create(sequence=sequence, actor=None, kind="wait", wait_days=1)
    assert _state(enrollment)[0].exit_reason == "removed"
    with tenant_context(org_a.pk):
        assert Sequence.objects.get(pk=sequence.pk).status == "archived"


def test_the_beat_tasks_fan_out_per_organization_and_a_second_run_advances_nothing(org_a, org_b, monkeypatch):
    from marketing.tasks import sequences as tasks

    sequence = mf.sequence(org_a, steps=[("wait", {"wait_days": 1}), ("wait", {"wait_days": 1})])
    enrollment = _enroll(sequence, _customer(org_a), now=timezone.now())
    mf.sequence(org_b, steps=[("wait", {"wait_days": 1})])  # nobody enrolled: nothing due
    enqueued = []
    monkeypatch.setattr(
        tasks.advance_organization_sequences, "delay_on_commit", lambda **kw: enqueued.append(kw)
    )

    assert tasks.advance_sequences.apply().get() == 1
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    first = tasks.advance_organization_sequences.apply(kwargs=enqueued[0]).get()
    second = tasks.advance_organization_sequences.apply(kwargs=enqueued[0]).get()

    assert (first["steps"], second["steps"]) == (1, 0)
    assert _state(enrollment)[1] == [(1, "waited")]
