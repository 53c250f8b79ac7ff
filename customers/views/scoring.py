"""The lead-scoring settings page: weights and thresholds, the score distribution, 'rescore now'."""

from __future__ import annotations

from celery.schedules import crontab
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from crm.permissions import Capability, requires
from customers import scoring
from customers.services import scoring as services

GROUP_HELP = {
    "demographic": gettext_lazy(
        "The first rule that matches counts: age in the range, then education, then job title."
    ),
    "behavioral": gettext_lazy(
        "Points for the number of interactions ever logged (the highest tier reached), plus points for how "
        "recently the last one happened."
    ),
    "engagement": gettext_lazy(
        "Each rule counts on its own: responses in the window, more than the given number."
    ),
    "firmographic": gettext_lazy(
        "The first rule that matches counts: annual revenue above a threshold, then any business."
    ),
    "actions": gettext_lazy(
        "The action recommended for a lead: the highest threshold its score reaches. The total is capped at 100."
    ),
}


# The settings page shows each rule as one row: its condition (thresholds) and its points.
# (label, condition: text and weight names in reading order, points weight name or None)
RULES = {
    "demographic": [
        (
            gettext_lazy("Age in range"),
            [gettext_lazy("from"), "age_min", gettext_lazy("to"), "age_max", gettext_lazy("years")],
            "age_points",
        ),
        (gettext_lazy("Education"), [gettext_lazy("bachelor's, master's or doctorate")], "education_points"),
        (gettext_lazy("Job title"), [gettext_lazy("contains director, VP or C-suite")], "title_points"),
        (gettext_lazy("Otherwise"), [], "demographic_other_points"),
    ],
    "behavioral": [
        (
            gettext_lazy("Many interactions"),
            [gettext_lazy("more than"), "interactions_high"],
            "interactions_high_points",
        ),
        (
            gettext_lazy("Some interactions"),
            [gettext_lazy("more than"), "interactions_mid"],
            "interactions_mid_points",
        ),
        (
            gettext_lazy("A few interactions"),
            [gettext_lazy("more than"), "interactions_low"],
            "interactions_low_points",
        ),
        (gettext_lazy("Fewer interactions"), [], "interactions_base_points"),
        (
            gettext_lazy("Recent"),
            [gettext_lazy("last interaction within"), "recent_days", gettext_lazy("days")],
            "recent_points",
        ),
        (
            gettext_lazy("Active"),
            [gettext_lazy("last interaction within"), "active_days", gettext_lazy("days")],
            "active_points",
        ),
    ],
    "engagement": [
        (
            gettext_lazy("Window"),
            [gettext_lazy("count responses of the last"), "engagement_days", gettext_lazy("days")],
            None,
        ),
        (gettext_lazy("Emails opened"), [gettext_lazy("more than"), "opens_over"], "opens_points"),
        (gettext_lazy("Website visits"), [gettext_lazy("more than"), "visits_over"], "visits_points"),
        (gettext_lazy("Forms submitted"), [gettext_lazy("more than"), "forms_over"], "forms_points"),
    ],
    "firmographic": [
        (
            gettext_lazy("Large company"),
            [gettext_lazy("annual revenue above"), "revenue_high"],
            "revenue_high_points",
        ),
        (
            gettext_lazy("Mid-size company"),
            [gettext_lazy("annual revenue above"), "revenue_mid"],
            "revenue_mid_points",
        ),
        (
            gettext_lazy("Small company"),
            [gettext_lazy("annual revenue above"), "revenue_low"],
            "revenue_low_points",
        ),
        (gettext_lazy("Any other business"), [gettext_lazy("customer type is business")], "business_points"),
    ],
    "actions": [
        (gettext_lazy("Immediate sales contact"), [gettext_lazy("score of at least"), "action_high"], None),
        (gettext_lazy("Nurture campaign"), [gettext_lazy("score of at least"), "action_medium"], None),
        (gettext_lazy("Education content"), [gettext_lazy("score of at least"), "action_low"], None),
    ],
}


class ScoringWeightsForm(forms.Form):
    """One whole-number field per weight, generated from `scoring.Weights` (ranges included); the order
    of thresholds is checked by `scoring.validate_weights` in the service."""

    def __init__(self, *args, weights: scoring.Weights, **kwargs):
        super().__init__(*args, **kwargs)
        for name, spec in scoring.WEIGHT_FIELDS.items():
            low, high = scoring.BOUNDS[spec.metadata["kind"]]
            self.fields[name] = forms.IntegerField(
                label=spec.metadata["label"],
                min_value=low,
                max_value=high,
                initial=getattr(weights, name),
                widget=forms.NumberInput(attrs={"class": "form-control-sm d-inline-block w-auto"}),
            )

    def clean(self):
        """Thresholds out of order are shown with the other errors (the service checks them again)."""
        cleaned = super().clean()
        for name, errors in scoring.order_errors(cleaned).items():
            self.add_error(name, errors)
        return cleaned

    def groups(self) -> list[dict]:
        """The rules of each part, each with its condition (text and fields), points field and defaults."""
        groups = []
        for key, label in scoring.GROUPS.items():
            rows = []
            for rule, condition, points in RULES[key]:
                parts = [{"field": self[p]} if p in self.fields else {"text": p} for p in condition]
                thresholds = [f"{scoring.WEIGHT_FIELDS[p].default:,}" for p in condition if p in self.fields]
                defaults = ["\N{EN DASH}".join(thresholds)] if thresholds else []
                if points:
                    defaults.append(_("%(n)s pts") % {"n": scoring.WEIGHT_FIELDS[points].default})
                rows.append(
                    {
                        "label": rule,
                        "condition": parts,
                        "fields": [part["field"] for part in parts if "field" in part],
                        "points": self[points] if points else None,
                        "default": " · ".join(defaults),
                    }
                )
            groups.append({"key": key, "label": label, "help": GROUP_HELP[key], "rows": rows})
        return groups


def _apply_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _nightly_time() -> str:
    """The nightly run's time, read from the one beat schedule ("" when it is not scheduled)."""
    from crm.celery import app

    entry = next(
        (
            e
            for e in app.conf.beat_schedule.values()
            if e["task"] == "customers.tasks.score_all_organizations"
        ),
        None,
    )
    schedule = entry and entry["schedule"]
    if not isinstance(schedule, crontab) or len(schedule.hour) != 1 or len(schedule.minute) != 1:
        return ""
    return f"{next(iter(schedule.hour)):02d}:{next(iter(schedule.minute)):02d}"


@requires(Capability.MANAGE_SCORING)
def scoring_settings(request):
    if request.user.organization_id is None:
        return render(
            request, "customers/scoring/settings.html", {"title": _("Lead scoring"), "no_org": True}
        )
    overview = services.scoring_overview(actor=request.user)
    form = ScoringWeightsForm(request.POST or None, weights=overview.weights)
    if request.method == "POST":
        reset = "reset" in request.POST
        if reset or form.is_valid():
            try:
                services.scoring_model_update(
                    organization=request.user.organization,
                    actor=request.user,
                    weights={} if reset else form.cleaned_data,
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(
                    request,
                    _("The default weights are back. Scores are being recomputed.")
                    if reset
                    else _("Scoring weights saved. Scores are being recomputed."),
                )
                return redirect("customers:scoring")
    context = {
        "title": _("Lead scoring"),
        "form": form,
        "overview": overview,
        "customized": bool(overview.model and overview.model.weights),
        "debounce_seconds": services.RESCORE_DEBOUNCE_SECONDS,
        "nightly_at": _nightly_time(),
    }
    return render(request, "customers/scoring/settings.html", context)


@require_POST
@requires(Capability.MANAGE_SCORING)
def scoring_rescore(request):
    try:
        services.scores_recompute_schedule(actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Rescoring started. The new scores appear here within a minute or two."))
    return redirect("customers:scoring")
