"""The public survey page's form: a score on the survey's scale (CSAT 1-5, NPS 0-10) and an optional comment."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from support.models import Survey
from support.surveys import COMMENT_MAX_CHARS, SCALES

CSAT_LABELS = {
    1: _("Very dissatisfied"),
    2: _("Dissatisfied"),
    3: _("Neither"),
    4: _("Satisfied"),
    5: _("Very satisfied"),
}


class SurveyAnswerForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("Your rating"),
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a rating.")},
    )
    comment = forms.CharField(
        label=_("Anything you would like to tell us? (optional)"),
        required=False,
        max_length=COMMENT_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4, "class": "form-control"}),
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == Survey.Kind.CSAT:
            choices = [(score, CSAT_LABELS[score]) for score in SCALES[kind]]
        else:
            choices = [(score, str(score)) for score in SCALES[kind]]
        self.fields["score"].choices = choices

    @property
    def score_choices(self) -> list[dict]:
        """The scale for the template: value, label, and whether it is the current choice."""
        current = self["score"].value()
        return [
            {"value": value, "label": label, "checked": str(value) == str(current)}
            for value, label in self.fields["score"].choices
        ]
