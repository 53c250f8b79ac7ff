"""The customer 360 view as data: the shape of the design document's `get_customer_360_view`, plus the
lead score with its explanation. The page and `/customers/<id>/360.json` read the same functions."""

from __future__ import annotations

from customers import panels, selectors
from customers.models import Customer


def score_for(*, customer: Customer) -> dict:
    """The lead score explained (total, breakdown, factors, recommended actions, trend), plus the
    engagement and health scores with their breakdowns."""
    from customers.scoring import explain

    return explain(customer)


def customer_360(*, customer: Customer, actor) -> dict:
    score = score_for(customer=customer)
    memberships = selectors.segments_of(customer=customer)
    extra = {item["panel"].key: item["data"] for item in panels.load_all(customer=customer, actor=actor)}
    return {
        "customer_profile": {
            "customer_id": str(customer.pk),
            "customer_number": customer.customer_number,
            "name": f"{customer.first_name} {customer.last_name}".strip(),
            "company": customer.company_name,
            "email": customer.email,
            "lifecycle_stage": customer.lifecycle_stage,
            "lead_score": customer.lead_score,
            "assigned_to": str(customer.assigned_to) if customer.assigned_to_id else None,
            "tags": customer.tags,
            "segments": [m.segment.name for m in memberships],
        },
        "recent_interactions": [
            {
                "date": i.interaction_date.isoformat(),
                "type": i.interaction_type,
                "channel": i.channel,
                "outcome": i.outcome,
                "sentiment": i.sentiment,
            }
            for i in selectors.recent_interactions(customer=customer)
        ],
        "active_opportunities": extra.pop("active_opportunities", []),
        "open_tickets": extra.pop("open_tickets", []),
        "lifetime_value_metrics": extra.pop("lifetime_value_metrics", {}),
        # A customer whose processing is restricted is not scored: the stored scores are shown as they were.
        "engagement_score": score["engagement"]["score"]
        if "engagement" in score
        else score["stored"]["engagement_score"],
        "health_score": score["health"]["score"] if "health" in score else score["stored"]["health_score"],
        "lead_score": {
            "total": score["total"],
            "breakdown": score.get("breakdown", {}),
            "factors": score.get("factors", {}),
            "recommended_actions": score.get("recommended_actions", []),
            "trend": score.get("trend", "restricted" if score.get("restricted") else "new"),
        },
        **extra,
    }
