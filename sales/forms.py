"""Forms of the opportunities area: the deal form, moving and closing a deal, the board's filters, pipelines,
stages and the organization's sales rules. Forms parse input; the services in sales/services/ validate
the rules and write."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import CURRENCY_CHOICES
from sales.models import ForecastCategory, SalesSettings, Stage

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _stage_choices(stages_by_pipeline) -> list:
    """Stage choices grouped by pipeline (an optgroup each when there are several pipelines)."""
    if len(stages_by_pipeline) == 1:
        return [(str(s.pk), s.name) for s in stages_by_pipeline[0][1]]
    return [(p.name, [(str(s.pk), s.name) for s in stages]) for p, stages in stages_by_pipeline]


class OpportunityForm(forms.Form):
    """Create or edit a deal. `customer` is the id the picker (or `?customer=` on the customer page) sets;
    probability and forecast category left empty follow the stage's defaults."""

    name = forms.CharField(label=_("Opportunity name"), max_length=200)
    customer = forms.UUIDField(
        label=_("Customer"), widget=forms.HiddenInput, error_messages={"required": _("Pick a customer.")}
    )
    stage = forms.ChoiceField(label=_("Stage"))
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=14,
        decimal_places=2,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)
    expected_close_date = forms.DateField(label=_("Expected close date"), widget=DATE)
    assigned_to = forms.ChoiceField(label=_("Owner"), required=False)
    probability = forms.IntegerField(
        label=_("Probability (%)"),
        min_value=0,
        max_value=100,
        required=False,
        help_text=_("Leave empty to use the stage's default."),
    )
    forecast_category = forms.ChoiceField(
        label=_("Forecast category"),
        required=False,
        choices=[("", _("Use the stage's default")), *ForecastCategory.choices],
    )
    lost_reason = forms.CharField(
        label=_("Lost reason"),
        max_length=300,
        required=False,
        help_text=_("Needed when the stage is a lost one."),
    )
    next_step = forms.CharField(label=_("Next step"), max_length=300, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    source_campaign = forms.ChoiceField(
        label=_("Source campaign"),
        required=False,
        help_text=_("The marketing campaign that brought this deal in, if any."),
    )

    def __init__(
        self, *args, stages_by_pipeline, owners, customer=None, opportunity=None, campaigns=(), **kwargs
    ):
        super().__init__(*args, **kwargs)
        self._campaigns = {str(c.pk): c for c in campaigns}
        self.fields["source_campaign"].choices = [("", _("None"))] + [
            (pk, c.name) for pk, c in self._campaigns.items()
        ]
        self.opportunity = opportunity
        self.customer_obj = customer
        if opportunity is not None:
            # A deal moves between the stages of its own pipeline.
            stages_by_pipeline = [(p, s) for p, s in stages_by_pipeline if p.pk == opportunity.pipeline_id]
        self.stages = {str(s.pk): s for _p, stages in stages_by_pipeline for s in stages}
        self.fields["stage"].choices = _stage_choices(stages_by_pipeline)
        self.fields["stage"].widget.attrs["data-stage-defaults"] = "1"
        self._owners = {str(u.pk): u for u in owners}
        self.fields["assigned_to"].choices = [("", _("Unassigned"))] + [(str(u.pk), str(u)) for u in owners]
        if opportunity is not None and not self.is_bound:
            self.initial.update(
                {
                    "name": opportunity.name,
                    "customer": opportunity.customer_id,
                    "stage": str(opportunity.stage_id),
                    "amount": opportunity.amount,
                    "currency": opportunity.currency,
                    "expected_close_date": opportunity.expected_close_date,
                    "assigned_to": str(opportunity.assigned_to_id or ""),
                    "probability": opportunity.probability if opportunity.probability_overridden else None,
                    "forecast_category": opportunity.forecast_category
                    if opportunity.forecast_category_overridden
                    else "",
                    "lost_reason": opportunity.lost_reason,
                    "next_step": opportunity.next_step,
                    "notes": opportunity.notes,
                    "source_campaign": str(opportunity.source_campaign_id or ""),
                }
            )

    def stage_defaults(self) -> dict:
        """{stage id: (probability, category label, outcome)}: the form shows what "stage default" means."""
        categories = dict(ForecastCategory.choices)
        return {
            pk: {
                "probability": s.probability,
                "category": str(categories[s.forecast_category]),
                "outcome": s.outcome,
            }
            for pk, s in self.stages.items()
        }

    def clean_stage(self) -> Stage:
        stage = self.stages.get(self.cleaned_data["stage"])
        if stage is None:
            raise forms.ValidationError(_("Pick a stage."))
        return stage

    def clean_assigned_to(self):
        value = self.cleaned_data.get("assigned_to")
        if not value:
            return None
        if value not in self._owners:
            raise forms.ValidationError(_("Pick an active user of your organization."))
        return self._owners[value]

    def clean_forecast_category(self):
        return self.cleaned_data.get("forecast_category") or None

    def clean_source_campaign(self):
        value = self.cleaned_data.get("source_campaign")
        if not value:
            return None
        if value not in self._campaigns:
            raise forms.ValidationError(_("Pick one of your organization's campaigns."))
        return self._campaigns[value]

    def clean(self):
        data = super().clean()
        stage = data.get("stage")
        if (
            isinstance(stage, Stage)
            and stage.outcome == Stage.Outcome.LOST
            and not data.get("lost_reason", "").strip()
        ):
            self.add_error("lost_reason", _("Say why the deal was lost."))
        return data

    def changes(self) -> dict:
        """Keyword arguments for opportunity_create / opportunity_update (customer resolved by the view)."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "stage": data["stage"],
            "amount": data["amount"],
            "currency": data["currency"],
            "expected_close_date": data["expected_close_date"],
            "assigned_to": data["assigned_to"],
            "probability": data["probability"],
            "forecast_category": data["forecast_category"],
            "lost_reason": data["lost_reason"].strip(),
            "next_step": data["next_step"].strip(),
            "notes": data["notes"],
            "source_campaign": data["source_campaign"],
        }


class MoveForm(forms.Form):
    """Move a deal to a stage of its pipeline (board drag and drop, the "Move to…" menu, the detail page)."""

    stage = forms.ChoiceField(label=_("Stage"))
    lost_reason = forms.CharField(label=_("Why was it lost?"), max_length=300, required=False)

    def __init__(self, *args, stages, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {str(s.pk): s for s in stages}
        self.fields["stage"].choices = [(str(s.pk), s.name) for s in stages]

    def clean_stage(self) -> Stage:
        return self.stages[self.cleaned_data["stage"]]


class LoseForm(forms.Form):
    reason = forms.CharField(label=_("Why was it lost?"), max_length=300)


class ReopenForm(forms.Form):
    stage = forms.ChoiceField(label=_("Reopen in stage"))

    def __init__(self, *args, stages, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {str(s.pk): s for s in stages if s.outcome == Stage.Outcome.OPEN}
        self.fields["stage"].choices = [(pk, s.name) for pk, s in self.stages.items()]

    def clean_stage(self) -> Stage:
        return self.stages[self.cleaned_data["stage"]]


class BoardFilterForm(forms.Form):
    pipeline = forms.ChoiceField(label=_("Pipeline"), required=False)
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    close_from = forms.DateField(label=_("Closing from"), required=False, widget=DATE)
    close_to = forms.DateField(label=_("Closing to"), required=False, widget=DATE)

    def __init__(self, *args, pipelines, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].choices = [(str(p.pk), p.name) for p in pipelines]
        choices = [("", _("Everyone")), ("mine", _("Mine"))]
        if owners:
            choices += [("none", _("Unassigned"))] + [(str(u.pk), str(u)) for u in owners]
        self.fields["owner"].choices = choices

    def clean(self):
        data = super().clean()
        start, end = data.get("close_from"), data.get("close_to")
        if start and end and start > end:
            self.add_error("close_to", _("The end comes before the start."))
        return data


class PipelineForm(forms.Form):
    name = forms.CharField(label=_("Pipeline name"), max_length=100)


class StageForm(forms.Form):
    name = forms.CharField(label=_("Stage name"), max_length=100)
    probability = forms.IntegerField(label=_("Probability (%)"), min_value=0, max_value=100)
    forecast_category = forms.ChoiceField(label=_("Forecast category"), choices=ForecastCategory.choices)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Stage.Outcome.choices)


class StageMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", _("Up")), ("down", _("Down"))])


class SalesSettingsForm(forms.ModelForm):
    class Meta:
        model = SalesSettings
        fields = [
            "opportunity_visibility",
            "no_activity_days",
            "approval_discount_pct",
            "approval_total",
            "quote_valid_days",
        ]
        widgets = {"opportunity_visibility": forms.RadioSelect}
        help_texts = {
            "opportunity_visibility": _("Sales managers and admins always see every opportunity."),
            "approval_discount_pct": _(
                "A quote with any line discounted above this needs a manager's approval."
            ),
            "approval_total": _("A quote whose total is above this needs a manager's approval."),
            "quote_valid_days": _("How long a new quote stays valid."),
        }

    def _post_clean(self):
        # The service validates the model; the form checks its own fields.
        pass
