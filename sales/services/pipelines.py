"""Pipelines, stages and the organization's sales rules."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from crm.models import Organization, User
from sales.models import ForecastCategory, Pipeline, SalesSettings, Stage

# The default pipeline: (name, probability %, forecast category, outcome).
DEFAULT_STAGES: tuple[tuple[str, int, str, str], ...] = (
    (_("Prospecting"), 10, ForecastCategory.PIPELINE, Stage.Outcome.OPEN),
    (_("Qualification"), 25, ForecastCategory.PIPELINE, Stage.Outcome.OPEN),
    (_("Proposal"), 50, ForecastCategory.BEST_CASE, Stage.Outcome.OPEN),
    (_("Negotiation"), 75, ForecastCategory.COMMIT, Stage.Outcome.OPEN),
    (_("Closed won"), 100, ForecastCategory.CLOSED, Stage.Outcome.WON),
    (_("Closed lost"), 0, ForecastCategory.OMITTED, Stage.Outcome.LOST),
)


def sales_settings_for(organization_id) -> SalesSettings:
    """The organization's sales rules, created with the defaults on first use (race-safe)."""
    found = SalesSettings.objects.filter(organization_id=organization_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return SalesSettings.objects.create(organization_id=organization_id)
    except IntegrityError:  # created by a concurrent request between our read and insert
        return SalesSettings.objects.get(organization_id=organization_id)


@transaction.atomic
def pipeline_ensure_default(*, organization: Organization, actor: User | None = None) -> Pipeline:
    """The organization's default pipeline, created with the standard stages if it has none."""
    pipeline = Pipeline.objects.filter(organization=organization, is_default=True).first()
    if pipeline is not None:
        return pipeline
    pipeline = Pipeline.objects.create(organization=organization, name=_("Sales pipeline"), is_default=True)
    Stage.objects.bulk_create(
        Stage(
            organization=organization,
            pipeline=pipeline,
            name=name,
            position=position,
            probability=probability,
            forecast_category=category,
            outcome=outcome,
        )
        for position, (name, probability, category, outcome) in enumerate(DEFAULT_STAGES)
    )
    return pipeline
