"""Sales settings: pipelines and stages (create, rename, default, delete, add, edit, reorder, delete refused
while deals are in a stage) and the organization's sales rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.tenancy import tenant_context
from sales.models import Opportunity, OpportunityChange, Pipeline, SalesSettings, Stage
from sales.services import pipelines as services
from tests import factories

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager_a(org_a):
    return factories.user(org_a, role="sales_manager")


def _names(org, pipeline=None) -> list[str]:
    with tenant_context(org.pk):
        pipeline = pipeline or Pipeline.objects.get(is_default=True)
        return list(
            Stage.objects.filter(pipeline=pipeline).order_by("position").values_list("name", flat=True)
        )


def test_the_settings_page_creates_the_default_pipeline_on_first_use(client, login, org_a, manager_a):
    login(manager_a)
    response = client.get(reverse("sales:pipeline_list"))
    assert response.status_code == 200
    assert _names(org_a) == [
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed won",
        "Closed lost",
    ]
    assert "Sales pipeline" in response.content.decode()


def test_settings_need_the_manage_pipelines_capability(client, login, org_a):
    login(factories.user(org_a, role="sales_rep"))
    assert client.get(reverse("sales:pipeline_list")).status_code == 403
    assert client.get(reverse("sales:sales_rules")).status_code == 403


def test_create_rename_set_default_and_delete_a_pipeline(client, login, org_a, manager_a):
    factories.pipeline(org_a)
    login(manager_a)
    response = client.post(reverse("sales:pipeline_create"), {"name": "Renewals"})
    with tenant_context(org_a.pk):
        renewals = Pipeline.objects.get(name="Renewals")
    assert response.url == reverse("sales:pipeline_detail", args=[renewals.pk])
    assert not renewals.is_default and len(_names(org_a, renewals)) == 6
    # Names are unique (whatever the case).
    response = client.post(reverse("sales:pipeline_create"), {"name": "renewals"})
    assert "already a pipeline" in str(response.context["form"].errors)
    client.post(reverse("sales:pipeline_rename", args=[renewals.pk]), {"name": "Renewals 2025"})
    client.post(reverse("sales:pipeline_set_default", args=[renewals.pk]))
    with tenant_context(org_a.pk):
        assert list(Pipeline.objects.filter(is_default=True).values_list("name", flat=True)) == [
            "Renewals 2025"
        ]
        old_default = Pipeline.objects.get(name="Sales pipeline")
    # The default pipeline cannot be deleted; one with deals neither.
    response = client.post(reverse("sales:pipeline_delete", args=[renewals.pk]), follow=True)
    assert "default pipeline cannot be deleted" in response.content.decode()
    with tenant_context(org_a.pk):
        proposal = Stage.objects.get(pipeline=old_default, name="Proposal")
    deal = factories.opportunity(org_a, stage=proposal)
    response = client.post(reverse("sales:pipeline_delete", args=[old_default.pk]), follow=True)
    assert "Sales pipeline still holds 1 deal: move or delete it first." in response.content.decode()
    with tenant_context(org_a.pk):
        Opportunity.objects.filter(pk=deal.pk).delete()
    response = client.post(reverse("sales:pipeline_delete", args=[old_default.pk]))
    assert response.url == reverse("sales:pipeline_list")
    with tenant_context(org_a.pk):
        assert list(Pipeline.objects.values_list("name", flat=True)) == ["Renewals 2025"]
        assert not Stage.objects.filter(pipeline_id=old_default.pk).exists()


def test_add_a_stage_goes_after_the_open_stages(client, login, org_a, manager_a):
    pipeline = factories.pipeline(org_a)
    login(manager_a)
    response = client.post(
        reverse("sales:stage_create", args=[pipeline.pk]),
        {
            "new-name": "Demo",
            "new-probability": "40",
            "new-forecast_category": "best_case",
            "new-outcome": "open",
        },
        **HTMX,
    )
    assert response.status_code == 200 and 'id="stages-card"' in response.content.decode()
    assert _names(org_a)[3:6] == ["Negotiation", "Demo", "Closed won"]
    # A duplicate name is refused, beside the field.
    response = client.post(
        reverse("sales:stage_create", args=[pipeline.pk]),
        {
            "new-name": "demo",
            "new-probability": "40",
            "new-forecast_category": "pipeline",
            "new-outcome": "open",
        },
        **HTMX,
    )
    assert "already has a stage with this name" in response.content.decode()


def test_editing_a_stage_default_updates_its_open_deals_that_follow_it(client, login, org_a, manager_a):
    proposal = factories.stage(org_a, "Proposal")
    follows = factories.opportunity(org_a, stage=proposal, amount=Decimal("100"))
    overridden = factories.opportunity(org_a, stage=proposal, probability=90)
    login(manager_a)
    prefix = f"stage-{proposal.pk}"
    client.post(
        reverse("sales:stage_update", args=[proposal.pk]),
        {
            f"{prefix}-name": "Proposal sent",
            f"{prefix}-probability": "60",
            f"{prefix}-forecast_category": "commit",
            f"{prefix}-outcome": "open",
        },
        **HTMX,
    )
    with tenant_context(org_a.pk):
        stage = Stage.objects.get(pk=proposal.pk)
        a = Opportunity.objects.get(pk=follows.pk)
        b = Opportunity.objects.get(pk=overridden.pk)
        change = OpportunityChange.objects.get(opportunity=follows, field="probability")
    assert (stage.name, stage.probability, stage.forecast_category) == ("Proposal sent", 60, "commit")
    assert (a.probability, a.forecast_category) == (60, "commit")
    assert (b.probability, b.forecast_category) == (90, "commit")
    assert (change.old_value, change.new_value, change.changed_by_id) == ("50", "60", manager_a.pk)


def test_a_stage_with_deals_cannot_be_deleted_or_change_outcome(client, login, org_a, manager_a):
    proposal = factories.stage(org_a, "Proposal")
    factories.opportunity(org_a, stage=proposal)
    factories.opportunity(org_a, stage=proposal)
    login(manager_a)
    response = client.post(reverse("sales:stage_delete", args=[proposal.pk]), **HTMX)
    assert (
        "2 deals are in Proposal: move them to another stage before deleting it." in response.content.decode()
    )
    prefix = f"stage-{proposal.pk}"
    response = client.post(
        reverse("sales:stage_update", args=[proposal.pk]),
        {
            f"{prefix}-name": "Proposal",
            f"{prefix}-probability": "50",
            f"{prefix}-forecast_category": "best_case",
            f"{prefix}-outcome": "won",
        },
        **HTMX,
    )
    assert "before changing its outcome" in response.content.decode()
    assert "Proposal" in _names(org_a)


def test_an_empty_stage_is_deleted_but_not_the_last_of_its_outcome(client, login, org_a, manager_a):
    qualification = factories.stage(org_a, "Qualification")
    lost = factories.stage(org_a, "Closed lost")
    login(manager_a)
    client.post(reverse("sales:stage_delete", args=[qualification.pk]), **HTMX)
    assert "Qualification" not in _names(org_a)
    response = client.post(reverse("sales:stage_delete", args=[lost.pk]), **HTMX)
    assert "at least one stage of each outcome" in response.content.decode()
    with tenant_context(org_a.pk):
        positions = list(
            Stage.objects.filter(pipeline_id=lost.pipeline_id)
            .order_by("position")
            .values_list("position", flat=True)
        )
    assert positions == [0, 1, 2, 3, 4]


def test_reorder_by_drag_and_by_the_arrow_buttons(client, login, org_a, manager_a):
    pipeline = factories.pipeline(org_a)
    login(manager_a)
    with tenant_context(org_a.pk):
        ids = list(Stage.objects.filter(pipeline=pipeline).order_by("position").values_list("pk", flat=True))
    new_order = [ids[1], ids[0], *ids[2:]]
    response = client.post(
        reverse("sales:stage_reorder", args=[pipeline.pk]), {"order": [str(i) for i in new_order]}, **HTMX
    )
    assert response.status_code == 200
    assert _names(org_a)[:2] == ["Qualification", "Prospecting"]
    client.post(reverse("sales:stage_move", args=[ids[3]]), {"direction": "up"}, **HTMX)  # Negotiation up
    assert _names(org_a)[:4] == ["Qualification", "Prospecting", "Negotiation", "Proposal"]
    client.post(reverse("sales:stage_move", args=[ids[1]]), {"direction": "up"})  # already first: no change
    assert _names(org_a)[0] == "Qualification"
    # A stale order (a stage missing) is refused.
    response = client.post(
        reverse("sales:stage_reorder", args=[pipeline.pk]), {"order": [str(ids[0])]}, **HTMX
    )
    assert "reload the page" in response.content.decode()


def test_stage_service_validates_probability(org_a, manager_a):
    pipeline = factories.pipeline(org_a)
    with tenant_context(org_a.pk, user=manager_a), pytest.raises(ValidationError) as error:
        services.stage_create(pipeline=pipeline, actor=manager_a, name="Too sure", probability=120)
    assert "probability" in error.value.message_dict


def test_sales_rules_form_saves_and_validates(client, login, org_a, manager_a):
    login(manager_a)
    url = reverse("sales:sales_rules")
    assert client.get(url).status_code == 200
    data = {
        "opportunity_visibility": "own",
        "no_activity_days": "7",
        "approval_discount_pct": "12.5",
        "approval_total": "25000",
        "quote_valid_days": "45",
    }
    response = client.post(url, data)
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        rules = SalesSettings.objects.get(organization=org_a)
    assert (rules.opportunity_visibility, rules.no_activity_days, rules.approval_discount_pct) == (
        "own",
        7,
        Decimal("12.50"),
    )
    assert (rules.approval_total, rules.quote_valid_days) == (Decimal("25000"), 45)
    response = client.post(url, {**data, "no_activity_days": "0", "approval_discount_pct": "150"})
    assert set(response.context["form"].errors) == {"no_activity_days", "approval_discount_pct"}


def test_another_organizations_pipelines_and_stages_are_404(client, login, org_a, org_b, manager_a):
    other = factories.pipeline(org_b)
    stage = factories.stage(org_b, "Proposal")
    login(manager_a)
    assert client.get(reverse("sales:pipeline_detail", args=[other.pk])).status_code == 404
    assert client.post(reverse("sales:stage_delete", args=[stage.pk])).status_code == 404
    assert client.post(reverse("sales:pipeline_rename", args=[other.pk]), {"name": "x"}).status_code == 404
