"""The staff request pages (compliance/views/requests.py): the queue (both laws, open first by deadline,
counts per status and overdue recomputed, filters, keyset pages, a fixed query count), logging a request
(also from the customer page), the request page with its timeline and steps, the htmx progress poll,
cross-tenant 404 and who may do what."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from compliance.models import CcpaRequest, GdprRequest, RequestStatus
from compliance.selectors.requests import request_queue
from compliance.services.requests import request_reject
from compliance.tasks import requests as tasks
from crm.tenancy import system_context, tenant_context
from tests import factories
from tests.compliance.requests_support import create, last_code, reload

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def _detail(privacy_request) -> str:
    kind = "ccpa" if isinstance(privacy_request, CcpaRequest) else "gdpr"
    return reverse("compliance:request_detail", kwargs={"kind": kind, "pk": privacy_request.pk})


def _step(privacy_request, name) -> str:
    kind = "ccpa" if isinstance(privacy_request, CcpaRequest) else "gdpr"
    return reverse(f"compliance:request_{name}", kwargs={"kind": kind, "pk": privacy_request.pk})


def _set_due(privacy_request, due):
    with system_context():
        type(privacy_request).objects.filter(pk=privacy_request.pk).update(due_at=due)


@pytest.fixture
def mixed(org_a, admin_a):
    """Six requests of both laws with hand-set deadlines and states (the expected order is by hand)."""
    now = timezone.now()
    g_late = create(org_a, requester_email="late@example.org")
    c_soon = create(org_a, kind="ccpa", resident_state="CA", requester_email="soon@example.org")
    g_later = create(org_a, request_type="erase", requester_email="later@example.org")
    c_na = create(org_a, kind="ccpa", resident_state="NV", requester_email="na@example.org")
    g_done = create(org_a, request_type="restrict", requester_email="rejected@example.org")
    c_far = create(
        org_a, kind="ccpa", request_type="delete", resident_state="CA", requester_email="far@example.org"
    )
    _set_due(g_late, now - 2 * DAY)
    _set_due(c_soon, now + 3 * DAY)
    _set_due(g_later, now + 20 * DAY)
    _set_due(c_far, now + 40 * DAY)
    _set_due(c_na, now - 5 * DAY)
    _set_due(g_done, now + 1 * DAY)
    with tenant_context(org_a.pk):
        request_reject(privacy_request=g_done, actor=admin_a, reason="Duplicate")
    return {
        "g_late": g_late,
        "c_soon": c_soon,
        "g_later": g_later,
        "c_na": c_na,
        "g_done": g_done,
        "c_far": c_far,
    }


def _refs(queue) -> list[str]:
    return [row.reference for row in queue.rows]


def test_the_queue_lists_open_requests_of_both_laws_by_deadline(login, client, admin_a, mixed):
    login(admin_a)
    response = client.get(reverse("compliance:request_list"))
    assert response.status_code == 200
    queue = response.context["queue"]
    assert _refs(queue) == ["GDPR-00001", "CCPA-00001", "GDPR-00002", "CCPA-00003"]
    states = [row.facts["state"] for row in queue.rows]
    assert states == ["breached", "at_risk", "ok", "ok"]
    html = response.content.decode()
    assert "overdue by 2 days" in html
    assert 'data-testid="overdue-count"' in html


def test_all_statuses_put_the_closed_ones_after_the_open_ones(admin_a, mixed):
    with tenant_context(admin_a.organization_id):
        queue = request_queue(actor=admin_a, filters={"status": "all"})
    # Open by deadline, then closed by deadline (the not-applicable one was due 5 days ago, the rejected in 1).
    assert _refs(queue) == [
        "GDPR-00001",
        "CCPA-00001",
        "GDPR-00002",
        "CCPA-00003",
        "CCPA-00002",
        "GDPR-00003",
    ]


def test_the_status_counts_and_the_overdue_count_match_an_independent_count(admin_a, mixed):
    with tenant_context(admin_a.organization_id):
        queue = request_queue(actor=admin_a, filters={})
        rows = [
            *GdprRequest.objects.values_list("status", "due_at"),
            *CcpaRequest.objects.values_list("status", "due_at"),
        ]
    now = timezone.now()
    expected = {s: sum(1 for status, _ in rows if status == s) for s in RequestStatus.values}
    assert {row["status"]: row["count"] for row in queue.status_counts} == expected
    assert expected == {
        "received": 4,
        "verifying": 0,
        "processing": 0,
        "completed": 0,
        "rejected": 1,
        "not_applicable": 1,
    }
    open_rows = [(s, d) for s, d in rows if s in ("received", "verifying", "processing")]
    assert queue.open_count == len(open_rows) == 4
    assert queue.overdue_count == sum(1 for _, d in open_rows if d < now) == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"kind": "ccpa"}, ["CCPA-00001", "CCPA-00003"]),
        ({"kind": "gdpr", "request_type": "erase"}, ["GDPR-00002"]),
        ({"request_type": "delete"}, ["CCPA-00003"]),
        ({"overdue": True}, ["GDPR-00001"]),
        ({"status": "rejected"}, ["GDPR-00003"]),
        ({"status": "not_applicable", "kind": "gdpr"}, []),
        ({"assignee": "none"}, ["GDPR-00001", "CCPA-00001", "GDPR-00002", "CCPA-00003"]),
        ({"assignee": "me"}, []),
    ],
)
def test_the_queue_filters(admin_a, mixed, filters, expected):
    with tenant_context(admin_a.organization_id):
        assert _refs(request_queue(actor=admin_a, filters=filters)) == expected


def test_the_assignee_filter_through_the_page(login, client, org_a, admin_a, mixed):
    from compliance.services.requests import request_assign

    with tenant_context(org_a.pk):
        request_assign(privacy_request=mixed["c_far"], actor=admin_a, assignee=admin_a)
    login(admin_a)
    mine = client.get(reverse("compliance:request_list"), {"assignee": str(admin_a.pk)}).context["queue"]
    assert _refs(mine) == ["CCPA-00003"]
    assert _refs(client.get(reverse("compliance:request_list"), {"assignee": "me"}).context["queue"]) == [
        "CCPA-00003"
    ]


def test_keyset_pages_walk_the_whole_queue_forwards_and_back(org_a, admin_a):
    now = timezone.now()
    made = []
    for n in range(7):
        r = create(org_a, kind="ccpa" if n % 2 else "gdpr", resident_state="CA")
        _set_due(r, now + (n % 3) * DAY)  # ties on due_at: the id breaks them
        made.append(r)
    with tenant_context(org_a.pk):
        everything = _refs(request_queue(actor=admin_a, filters={}, per_page=50))
        assert len(everything) == 7
        pages, cursor = [], None
        while True:
            page = request_queue(actor=admin_a, filters={}, cursor=cursor, per_page=3)
            pages.append(_refs(page))
            if not page.has_next:
                break
            cursor = page.next_cursor
        assert [r for p in pages for r in p] == everything
        assert [len(p) for p in pages] == [3, 3, 1]
        back = request_queue(actor=admin_a, filters={}, cursor=page.previous_cursor, per_page=3)
        assert _refs(back) == pages[1]
        assert (
            request_queue(actor=admin_a, filters={}, cursor="forged", per_page=3).rows[0].reference
            == everything[0]
        )


def test_the_queue_page_runs_a_fixed_number_of_queries(
    login, client, org_a, admin_a, django_assert_max_num_queries
):
    login(admin_a)
    url = reverse("compliance:request_list")
    for _ in range(3):
        create(org_a)
    with django_assert_max_num_queries(16) as few:
        client.get(url)
    for n in range(25):
        create(
            org_a,
            kind="ccpa" if n % 2 else "gdpr",
            resident_state="CA",
            customer=factories.customer(org_a) if n % 3 else None,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["queue"].rows) == 25


def test_logging_a_request_from_the_page(login, client, org_a, django_capture_on_commit_callbacks):
    rep = factories.user(org_a, role="sales_rep")
    customer = factories.customer(org_a, first_name="Dana", last_name="Subject", email="dana@example.org")
    login(rep)
    url = reverse("compliance:request_create")
    page = client.get(url, {"customer": str(customer.pk)})
    assert page.status_code == 200
    assert page.context["form"].initial["customer"] == f"C-{customer.number:06d}"
    errors = client.post(
        url, {"request_kind": "gdpr:rectify", "requester_name": "", "requester_email": "nope"}
    )
    assert errors.status_code == 200
    assert set(errors.context["form"].errors) >= {"requester_name", "requester_email", "details"}
    data = {
        "request_kind": "gdpr:rectify",
        "requester_name": "Dana Subject",
        "requester_email": "dana@example.org",
        "customer": f"C-{customer.number:06d}",
        "fix_last_name": "Subjekt",
    }
    response = client.post(url, data)
    assert response.status_code == 302  # a rep may not view the queue: back to the customers
    with tenant_context(org_a.pk):
        created = GdprRequest.objects.get()
    assert (created.customer_id, created.rectification, created.created_by_id) == (
        customer.pk,
        {"last_name": "Subjekt"},
        rep.pk,
    )


def test_a_ccpa_request_logged_for_a_nevada_customer_is_not_applicable(
    login, client, org_a, admin_a, django_capture_on_commit_callbacks
):
    factories.customer(org_a, email="nv@example.org", state="NV")
    login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("compliance:request_create"),
            {"request_kind": "ccpa:access", "requester_name": "Nev", "requester_email": "nv@example.org"},
        )
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        created = CcpaRequest.objects.get()
    assert created.status == RequestStatus.NOT_APPLICABLE
    assert "not applicable" in mail.outbox[-1].subject
    detail = client.get(response["Location"])
    assert "California residents only" in detail.content.decode()


def test_the_request_page_shows_the_timeline_and_the_steps(
    login, client, org_a, admin_a, django_capture_on_commit_callbacks
):
    privacy_request = create(org_a, actor=admin_a)
    login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(_step(privacy_request, "send_code")).status_code == 302
    page = client.get(_detail(privacy_request))
    html = page.content.decode()
    assert page.status_code == 200
    assert [e["status_to"] for e in page.context["timeline"]] == ["Verifying identity", "Received"]
    assert page.context["timeline"][-1]["operation"] == "INSERT"
    assert 'data-testid="action-verify_code"' in html
    assert 'data-testid="action-reject"' in html
    assert last_code() not in html


def test_a_wrong_code_typed_by_staff_is_counted_and_shown_beside_the_field(
    login, client, org_a, admin_a, django_capture_on_commit_callbacks
):
    privacy_request = create(org_a)
    login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_step(privacy_request, "send_code"))
    response = client.post(_step(privacy_request, "verify_code"), {"code-code": "AAAA-AAAA"})
    assert response.status_code == 200
    assert "Wrong code. 4 attempts left." in response.content.decode()
    assert reload(org_a, privacy_request).verification_attempts == 1
    right = client.post(_step(privacy_request, "verify_code"), {"code-code": last_code()})
    assert right.status_code == 302
    assert reload(org_a, privacy_request).status == RequestStatus.PROCESSING


def test_step_errors_show_beside_their_fields(login, client, org_a, admin_a):
    privacy_request = create(org_a, kind="ccpa", resident_state="CA")
    login(admin_a)
    response = client.post(
        _step(privacy_request, "extend"), {"extend-reason": "Complex", "extend-days": "50"}
    )
    assert response.status_code == 200
    assert response.context["forms"]["extend"].errors["days"] == [
        "The deadline can be extended by 45 more days at most."
    ]
    assert response.context["open_action"] == "extend"
    missing = client.post(_step(privacy_request, "reject"), {"reject-reason": ""})
    assert "reason" in missing.context["forms"]["reject"].errors
    refused = client.post(_step(privacy_request, "process"), follow=True)
    assert "not verified" in refused.content.decode()


def test_verify_by_staff_then_process_a_restriction_from_the_page(
    login, client, org_a, admin_a, django_capture_on_commit_callbacks
):
    customer = factories.customer(org_a, email="dana@example.org")
    privacy_request = create(org_a, request_type="restrict")
    login(admin_a)
    assert (
        client.post(_step(privacy_request, "mark_verified"), {"verified-note": "Called back"}).status_code
        == 302
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(_step(privacy_request, "process")).status_code == 302
    assert reload(org_a, privacy_request).status == RequestStatus.COMPLETED
    assert reload(org_a, customer).processing_restricted is True
    page = client.get(_detail(privacy_request)).content.decode()
    assert 'data-testid="request-result"' in page
    assert 'data-testid="request-steps"' not in page


def test_an_export_shows_processing_and_the_poll_refreshes_the_page_when_done(
    login, client, org_a, admin_a, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        tasks.process_privacy_request, "delay_on_commit", lambda *a, **k: queued.append((a, k))
    )
    factories.customer(org_a, email="dana@example.org")
    privacy_request = create(org_a)
    login(admin_a)
    client.post(_step(privacy_request, "mark_verified"), {"verified-note": "ID seen"})
    client.post(_step(privacy_request, "process"))
    page = client.get(_detail(privacy_request)).content.decode()
    assert "Processing…" in page and 'hx-trigger="every 2s"' in page
    poll = client.get(_step(privacy_request, "progress"))
    assert poll.status_code == 200 and "HX-Refresh" not in poll
    with django_capture_on_commit_callbacks(execute=True):
        tasks.process_privacy_request.apply(args=queued[0][0], kwargs=queued[0][1]).get()
    done = client.get(_step(privacy_request, "progress"))
    assert done["HX-Refresh"] == "true"
    page = client.get(_detail(privacy_request)).content.decode()
    assert 'data-testid="export-download"' in page


def test_another_organizations_request_and_an_unknown_kind_are_404(login, client, org_b, admin_a):
    theirs = create(org_b)
    login(admin_a)
    assert client.get(_detail(theirs)).status_code == 404
    assert client.post(_step(theirs, "reject"), {"reject-reason": "x"}).status_code == 404
    assert (
        client.get(
            reverse("compliance:request_detail", kwargs={"kind": "hipaa", "pk": theirs.pk})
        ).status_code
        == 404
    )
    with system_context():
        assert GdprRequest.objects.get(pk=theirs.pk).status == RequestStatus.RECEIVED


@pytest.mark.parametrize(
    ("role", "queue", "create_page", "step"),
    [
        ("admin", 200, 200, 302),
        ("sales_manager", 200, 200, 403),
        ("support_manager", 200, 200, 403),
        ("marketing_manager", 200, 200, 403),
        ("sales_rep", 403, 200, 403),
        ("support_agent", 403, 200, 403),
    ],
)
def test_who_may_see_log_and_process_requests(login, client, org_a, role, queue, create_page, step):
    user = factories.user(org_a, role=role)
    privacy_request = create(org_a)
    login(user)
    assert client.get(reverse("compliance:request_list")).status_code == queue
    assert client.get(_detail(privacy_request)).status_code == queue
    assert client.get(reverse("compliance:request_create")).status_code == create_page
    assert client.post(_step(privacy_request, "reject"), {"reject-reason": "No"}).status_code == step


def test_the_customer_page_offers_to_log_a_privacy_request_and_lists_its_requests(
    login, client, org_a, admin_a
):
    customer = factories.customer(org_a, email="dana@example.org")
    create(org_a)
    login(admin_a)
    html = client.get(reverse("customers:detail", kwargs={"pk": customer.pk})).content.decode()
    assert f"{reverse('compliance:request_create')}?customer={customer.pk}" in html
    assert "GDPR-00001" in html
    rep = factories.user(org_a, role="sales_rep")
    login(rep)
    html = client.get(reverse("customers:detail", kwargs={"pk": customer.pk})).content.decode()
    assert 'data-testid="log-privacy-request"' in html
    assert "GDPR-00001" not in html


def test_the_nav_shows_privacy_requests_to_those_who_may_see_them(login, client, org_a, admin_a):
    login(admin_a)
    assert (
        reverse("compliance:request_list") in client.get(reverse("compliance:request_list")).content.decode()
    )


def test_an_empty_queue_says_what_to_do(login, client, admin_a):
    login(admin_a)
    html = client.get(reverse("compliance:request_list")).content.decode()
    assert 'data-testid="empty-state"' in html
    assert "Log a request" in html
