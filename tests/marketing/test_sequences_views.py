"""Sequence pages: the builder (add, edit, move, delete steps, with and without htmx), enrolling by hand,
the numbers on the list and the sequence page recomputed independently, fixed query counts, the path page,
the customer 360 panel, roles, and another organization's ids answering 404."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from marketing.models import EmailSend, Enrollment, Sequence, Step, StepRun
from marketing.sequences import advance_due
from marketing.services import sequences as services
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager(org_a):
    return factories.user(org_a, role="marketing_manager")


@pytest.fixture
def client_a(login, manager):
    return login(manager)


def _number(html: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">(\d+)<', html)
    assert match, testid
    return int(match.group(1))


def _numbers(html: str, testid: str) -> list[int]:
    return [int(n) for n in re.findall(rf'data-testid="{testid}">(\d+)', html)]


# --- The builder -----------------------------------------------------------------------------------------------


def test_a_sequence_is_built_step_by_step_through_the_pages(org_a, client_a):
    campaign = mf.campaign(org_a)
    template = mf.email_template(org_a)
    response = client_a.post(
        reverse("marketing:sequence_create"),
        {"name": "Welcome", "campaign": campaign.pk, "exit_on_unsubscribe": "on"},
    )
    with tenant_context(org_a.pk):
        sequence = Sequence.objects.get(name="Welcome")
    assert response.status_code == 302 and response.url == reverse(
        "marketing:sequence_detail", args=[sequence.pk]
    )
    assert (sequence.status, sequence.exit_on_unsubscribe, sequence.exit_on_reply) == ("draft", True, False)
    add = reverse("marketing:sequence_step_create", args=[sequence.pk])

    # The editor opens inside the steps card (htmx) or as a page of its own.
    assert 'data-testid="step-editor"' in client_a.get(f"{add}?kind=wait", **HTMX).content.decode()
    assert client_a.get(f"{add}?kind=wait").status_code == 200

    assert client_a.post(add, {"kind": "send_email", "template": template.pk}).status_code == 302
    html = client_a.post(add, {"kind": "wait", "wait_days": 2}, **HTMX).content.decode()
    assert 'id="steps-card"' in html and "Wait 2 days" in html
    client_a.post(
        add,
        {"kind": "branch", "condition_kind": "score_at_least", "condition_score": 40, "else_position": ""},
        **HTMX,
    )
    client_a.post(add, {"kind": "create_task", "task_subject": "Call", "task_due_days": 1}, **HTMX)
    client_a.post(add, {"kind": "update_field", "update_field": "tags_add", "update_tag": "warm"}, **HTMX)
    with tenant_context(org_a.pk):
        steps = {s.position: s for s in Step.objects.filter(sequence=sequence)}
    assert [steps[p].kind for p in range(1, 6)] == [
        "send_email",
        "wait",
        "branch",
        "create_task",
        "update_field",
    ]
    assert steps[3].condition == {"kind": "score_at_least", "value": 40}

    # Edit the branch to jump to step 5; move the task up; delete the wait.
    client_a.post(
        reverse("marketing:sequence_step_edit", args=[steps[3].pk]),
        {"condition_kind": "opened_previous", "else_position": 5},
        **HTMX,
    )
    client_a.post(reverse("marketing:sequence_step_move", args=[steps[4].pk]), {"direction": "up"}, **HTMX)
    client_a.post(reverse("marketing:sequence_step_delete", args=[steps[2].pk]), **HTMX)
    with tenant_context(org_a.pk):
        order = [
            (s.kind, s.else_position, s.condition)
            for s in Step.objects.filter(sequence=sequence).order_by("position")
        ]
    assert order == [
        ("send_email", None, {}),
        ("create_task", None, {}),
        ("branch", 4, {"kind": "opened_previous"}),
        ("update_field", None, {}),
    ]

    response = client_a.post(reverse("marketing:sequence_status", args=[sequence.pk]), {"status": "active"})
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        assert Sequence.objects.get(pk=sequence.pk).status == "active"


def test_step_errors_are_shown_beside_the_fields(org_a, client_a):
    sequence = mf.sequence(org_a, status="draft")
    add = reverse("marketing:sequence_step_create", args=[sequence.pk])

    html = client_a.post(add, {"kind": "wait", "wait_days": 0}, **HTMX).content.decode()
    assert "is-invalid" in html and 'id="id_wait_days-error"' in html
    html = client_a.post(add, {"kind": "send_email"}).content.decode()
    assert "Pick the email template to send." in html
    html = client_a.post(add, {"kind": "branch", "condition_kind": "lifecycle_stage_in"}).content.decode()
    assert "Pick one or more lifecycle stages." in html
    with tenant_context(org_a.pk):
        assert not Step.objects.filter(sequence=sequence).exists()


def test_customers_are_enrolled_by_hand_from_the_sequence_page(org_a, client_a):
    sequence = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})])
    ok = factories.customer(org_a, first_name="Enid", last_name="Blyton")
    restricted = factories.customer(org_a, first_name="Rita", last_name="Restricted")
    with system_context():
        Customer.objects.filter(pk=restricted.pk).update(processing_restricted=True)
    url = reverse("marketing:sequence_enroll", args=[sequence.pk])

    assert "Blyton" in client_a.get(url, {"q": "Blyton"}, **HTMX).content.decode()
    response = client_a.post(url, {"customers": [str(ok.pk), str(restricted.pk)]})

    assert response.status_code == 302
    with tenant_context(org_a.pk):
        assert list(Enrollment.objects.filter(sequence=sequence).values_list("customer_id", "source")) == [
            (ok.pk, "manual")
        ]


# --- Numbers, recomputed ---------------------------------------------------------------------------------------


def _scenario(org):
    """A sequence (1 branch score >= 50 else 3 · 2 tag · 3 wait 2 days · 4 tag) and five customers: two with
    a score of 60, three of 10; one low scorer opted out (exits on unsubscribe); one high scorer removed by
    hand before the engine ran. Advanced once."""
    sequence = mf.sequence(
        org,
        steps=[
            ("branch", {"condition": {"kind": "score_at_least", "value": 50}, "else_position": 3}),
            ("update_field", {"update": {"field": "tags_add", "value": "hot"}}),
            ("wait", {"wait_days": 2}),
            ("update_field", {"update": {"field": "tags_add", "value": "done"}}),
        ],
    )
    customers = [factories.customer(org, email_opt_in=True) for _ in range(5)]
    with system_context():
        Customer.objects.filter(pk__in=[c.pk for c in customers[:2]]).update(lead_score=60)
        Customer.objects.filter(pk=customers[4].pk).update(email_opt_in=False)
    now = timezone.now()
    with tenant_context(org.pk):
        services.enrollments_create(
            sequence=sequence, actor=None, customer_ids=[c.pk for c in customers], now=now
        )
        removed = Enrollment.objects.get(sequence=sequence, customer=customers[1])
        services.enrollment_remove(enrollment=removed, actor=None)
        advance_due(organization_id=org.pk, now=now)
    return sequence


def test_sequence_page_numbers_match_an_independent_count(org_a, client_a):
    sequence = _scenario(org_a)

    html = client_a.get(reverse("marketing:sequence_detail", args=[sequence.pk])).content.decode()

    with connection.cursor() as cursor, tenant_context(org_a.pk):
        cursor.execute(
            "SELECT status, count(*) FROM sequence_enrollments WHERE sequence_id = %s GROUP BY status",
            [sequence.pk],
        )
        by_status = dict(cursor.fetchall())
        cursor.execute(
            "SELECT s.position, count(r.id), count(r.id) FILTER (WHERE r.outcome = 'branch_yes'),"
            " count(r.id) FILTER (WHERE r.outcome = 'branch_no')"
            " FROM marketing_sequence_steps s LEFT JOIN sequence_step_runs r ON r.step_id = s.id"
            " WHERE s.sequence_id = %s GROUP BY s.position ORDER BY s.position",
            [sequence.pk],
        )
        per_step = cursor.fetchall()
    # By hand: 5 enrolled; 1 removed, 1 exited (opted out): 3 ran. 1 high scorer: yes; 2 low: no.
    assert by_status == {"active": 3, "exited": 2}
    assert per_step == [(1, 3, 1, 2), (2, 1, 0, 0), (3, 3, 0, 0), (4, 0, 0, 0)]
    assert _number(html, "count-total") == 5
    assert _number(html, "count-active") == by_status["active"]
    assert _number(html, "count-completed") == 0
    assert _number(html, "count-exited") == by_status["exited"]
    assert sorted(_numbers(html, "exit-count")) == [1, 1]  # unsubscribed, removed by hand
    assert _numbers(html, "step-reached") == [row[1] for row in per_step]
    assert _numbers(html, "step-yes") == [1] and _numbers(html, "step-no") == [2]
    assert _numbers(html, "step-waiting") == [3]  # all three wait to run step 4
    assert html.count('data-testid="enrollment-row"') == 5

    filtered = client_a.get(reverse("marketing:sequence_detail", args=[sequence.pk]), {"status": "exited"})
    assert filtered.content.decode().count('data-testid="enrollment-row"') == 2


def test_list_page_counts_match_and_the_query_count_does_not_grow(org_a, client_a):
    sequence = _scenario(org_a)
    url = reverse("marketing:sequence_list")
    with CaptureQueriesContext(connection) as one:
        html = client_a.get(url).content.decode()
    assert (
        _number(html, "sequence-active"),
        _number(html, "sequence-completed"),
        _number(html, "sequence-exited"),
    ) == (
        3,
        0,
        2,
    )
    for _ in range(3):
        other = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})])
        with tenant_context(org_a.pk):
            services.enrollment_create(sequence=other, customer=factories.customer(org_a), source="manual")
    with CaptureQueriesContext(connection) as four:
        html = client_a.get(url).content.decode()
    assert html.count('data-testid="sequence-row"') == 4
    assert len(four) == len(one)
    assert sequence.name in html


def test_sequence_page_query_count_does_not_grow_with_enrollments_or_steps(org_a, client_a):
    small = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})])
    large = mf.sequence(org_a, steps=[("wait", {"wait_days": d}) for d in range(1, 6)])
    with tenant_context(org_a.pk):
        services.enrollment_create(sequence=small, customer=factories.customer(org_a), source="manual")
        services.enrollments_create(
            sequence=large, actor=None, customer_ids=[factories.customer(org_a).pk for _ in range(6)]
        )
    counts = []
    for sequence in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client_a.get(reverse("marketing:sequence_detail", args=[sequence.pk])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_enrollment_page_shows_the_path_with_the_email_status(org_a, client_a):
    template = mf.email_template(org_a)
    sequence = mf.sequence(
        org_a,
        steps=[
            ("send_email", {"template": template}),
            ("wait", {"wait_days": 3}),
            ("send_email", {"template": template}),
        ],
    )
    customer = factories.customer(org_a, email_opt_in=True)
    now = timezone.now()
    with tenant_context(org_a.pk):
        enrollment = services.enrollment_create(
            sequence=sequence, customer=customer, source="manual", now=now
        )
        advance_due(organization_id=org_a.pk, now=now)
        run = StepRun.objects.get(enrollment=enrollment, step__position=1)
        EmailSend.objects.filter(step_run_id=run.pk).update(opened_at=now + datetime.timedelta(hours=1))

    html = client_a.get(reverse("marketing:enrollment_detail", args=[enrollment.pk])).content.decode()

    assert html.count('data-testid="path-step"') == 2
    assert "Email queued" in html and "Waited" in html
    assert "opened" in html and "not opened" not in html
    assert "Next: step 3 of 3" in html


def test_the_customer_page_has_a_sequences_panel(org_a, client_a):
    sequence = mf.sequence(org_a, name="Trial nurture", steps=[("wait", {"wait_days": 1})])
    customer = factories.customer(org_a)
    with tenant_context(org_a.pk):
        services.enrollment_create(sequence=sequence, customer=customer, source="manual")

    html = client_a.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert 'data-testid="sequences-panel"' in html and "Trial nurture" in html


# --- Roles and tenants -----------------------------------------------------------------------------------------


def test_a_sales_rep_sees_sequences_but_cannot_change_them(org_a, login):
    sequence = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})])
    client = login(factories.user(org_a, role="sales_rep"))
    assert client.get(reverse("marketing:sequence_list")).status_code == 200
    assert client.get(reverse("marketing:sequence_detail", args=[sequence.pk])).status_code == 200
    assert client.get(reverse("marketing:sequence_create")).status_code == 403
    assert (
        client.post(
            reverse("marketing:sequence_status", args=[sequence.pk]), {"status": "paused"}
        ).status_code
        == 403
    )


def test_another_organizations_sequence_step_and_enrollment_are_404(org_a, org_b, client_a):
    foreign = mf.sequence(org_b, steps=[("wait", {"wait_days": 1})])
    with tenant_context(org_b.pk):
        step = Step.objects.get(sequence=foreign)
        enrollment = services.enrollment_create(
            sequence=foreign, customer=factories.customer(org_b), source="manual"
        )

    for name in ("sequence_detail", "sequence_edit", "sequence_enroll"):
        assert client_a.get(reverse(f"marketing:{name}", args=[foreign.pk])).status_code == 404, name
    assert client_a.get(reverse("marketing:sequence_step_edit", args=[step.pk])).status_code == 404
    assert client_a.get(reverse("marketing:enrollment_detail", args=[enrollment.pk])).status_code == 404
    for name in ("sequence_step_delete", "sequence_step_move"):
        assert (
            client_a.post(reverse(f"marketing:{name}", args=[step.pk]), {"direction": "up"}).status_code
            == 404
        )
    assert client_a.post(reverse("marketing:enrollment_remove", args=[enrollment.pk])).status_code == 404
    assert (
        client_a.post(
            reverse("marketing:sequence_status", args=[foreign.pk]), {"status": "paused"}
        ).status_code
        == 404
    )
    with tenant_context(org_b.pk):
        assert Step.objects.filter(pk=step.pk).exists()
        assert Sequence.objects.get(pk=foreign.pk).status == "active"
        assert Enrollment.objects.get(pk=enrollment.pk).status == "active"
