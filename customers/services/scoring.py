"""Writes of lead scoring: recompute scores, change an organization's weights, debounced rescoring after new
interactions, and the read behind the scoring settings page."""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from customers import scoring
from customers.models import ScoringModel

logger = logging.getLogger(__name__)

# A burst of interactions of one customer enqueues one rescoring task: the first sets this key (SET NX EX)
# and enqueues the task to run once the key has expired; the ones that find the key have committed
# before the task runs (they are called on commit), so the task sees them all.
RESCORE_DEBOUNCE_SECONDS = 30


def _rescore_key(organization_id, customer_id) -> str:
    return f"scoring:rescore:{organization_id}:{customer_id}"


def _last_run_key(organization_id) -> str:
    return f"scoring:last-run:{organization_id}"


@transaction.atomic
def scores_recompute(*, organization_id, customer_ids=None, now: datetime.datetime | None = None) -> int:
    """Score the organization's customers (all, or `customer_ids`) set-based; returns how many were scored.

    A full run is remembered (time, count, duration) for the settings page once it commits.
    """
    started = time.perf_counter()
    scored = scoring.score_organization(organization_id, customer_ids=customer_ids, now=now)
    if customer_ids is None:
        run = {
            "at": (now or timezone.now()).isoformat(),
            "scored": scored,
            "seconds": round(time.perf_counter() - started, 3),
        }
        transaction.on_commit(lambda: cache.set(_last_run_key(organization_id), run, None), robust=True)
    return scored


def _require_scoring_admin(actor: User, organization_id) -> None:
    if not has_capability(actor, Capability.MANAGE_SCORING):
        raise PermissionDenied
    if actor.organization_id != organization_id and not actor.is_superuser:
        raise PermissionDenied


@transaction.atomic
def scoring_model_update(*, organization: Organization, actor: User, weights: dict) -> ScoringModel:
    """Save the organization's weights (only what differs from the defaults) and rescore everyone.

    Raises ValidationError keyed by weight name when a value is out of range or thresholds are out of
    order. An empty `weights` puts the defaults back. The change lands in the audit trail (trigger).
    """
    _require_scoring_admin(actor, organization.pk)
    validated = scoring.validate_weights(weights)
    model = ScoringModel.objects.select_for_update().filter(organization=organization).first()
    if model is None:
        model = ScoringModel(organization=organization)
    model.weights = validated.overrides()
    model.updated_by = actor
    model.save()
    _enqueue_full_rescore(organization.pk)
    return model


@transaction.atomic
def scores_recompute_schedule(*, actor: User) -> None:
    """'Rescore now': a background run over the actor's whole organization, once this transaction commits."""
    _require_scoring_admin(actor, actor.organization_id)
    if actor.organization_id is None:
        raise ValidationError(_("Platform operators have no customers to score."))
    _enqueue_full_rescore(actor.organization_id)


def _enqueue_full_rescore(organization_id) -> None:
    from customers.tasks import rescore_customers

    rescore_customers.delay_on_commit(organization_id=str(organization_id))


def request_rescore(organization_id, customer_id) -> bool:
    """Rescore one customer soon (after new interactions): at most one task per customer per 30 seconds.

    Called after the interaction's transaction has committed. Returns whether a task was enqueued.
    The task runs RESCORE_DEBOUNCE_SECONDS after the first call, when the key has expired, so every
    interaction of the burst is committed by then and the next one after it enqueues a new task.
    """
    from customers.tasks import rescore_customers

    if not cache.add(_rescore_key(organization_id, customer_id), 1, timeout=RESCORE_DEBOUNCE_SECONDS):
        return False
    rescore_customers.apply_async_on_commit(
        kwargs={"organization_id": str(organization_id), "customer_ids": [str(customer_id)]},
        countdown=RESCORE_DEBOUNCE_SECONDS + 1,
    )
    return True


# --- Read for the settings page (customers/selectors.py belongs to the profiles area) -------------------


@dataclass(frozen=True)
class ScoringOverview:
    weights: scoring.Weights
    model: ScoringModel | None
    distribution: list[dict]
    total: int
    last_run: dict | None
    last_changed: datetime.datetime | None


def scoring_overview(*, actor: User) -> ScoringOverview:
    """The organization's weights, score distribution and when scores were last computed (3 queries)."""
    organization_id = actor.organization_id
    model = ScoringModel.objects.filter(organization_id=organization_id).select_related("updated_by").first()
    weights, _tz = scoring.organization_settings(organization_id)
    distribution, last_changed = scoring.score_distribution(organization_id)
    last_run = cache.get(_last_run_key(organization_id))
    if last_run:
        last_run = {**last_run, "at": parse_datetime(last_run["at"])}
    return ScoringOverview(
        weights=weights,
        model=model,
        distribution=distribution,
        total=sum(bucket["count"] for bucket in distribution),
        last_run=last_run,
        last_changed=last_changed,
    )
