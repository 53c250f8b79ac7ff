"""Forms of the A/B test page: the test's settings and one variant's content."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from marketing.models import ABTest, EmailTemplate, Variant

CONFIDENCE_CHOICES = [
    ("0.800", _("80 %")),
    ("0.900", _("90 %")),
    ("0.950", _("95 % (recommended)")),
    ("0.990", _("99 %")),
]


class ABTestSettingsForm(forms.Form):
    enabled = forms.BooleanField(
        label=_("Run an A/B test"),
        required=False,
        help_text=_("Send variants to a random share of the audience first, then the best one to the rest."),
    )
    test_share = forms.IntegerField(
        label=_("Test share (%)"),
        min_value=2,
        max_value=100,
        initial=20,
        help_text=_("The share of recipients, split evenly between the variants; the rest get the winner."),
    )
    metric = forms.ChoiceField(label=_("Winning metric"), choices=ABTest.Metric.choices, initial="open_rate")
    duration_hours = forms.IntegerField(
        label=_("Test duration (hours)"),
        min_value=1,
        max_value=720,
        initial=24,
        help_text=_("How long the sample is watched before the winner is chosen."),
    )
    confidence_level = forms.TypedChoiceField(
        label=_("Confidence level"),
        choices=CONFIDENCE_CHOICES,
        coerce=Decimal,
        initial="0.950",
        help_text=_("How sure the test must be before it declares a winner."),
    )
    min_sample = forms.IntegerField(
        label=_("Minimum recipients per variant"),
        min_value=10,
        max_value=1_000_000,
        initial=100,
        help_text=_("With fewer, the test is inconclusive and the default variant is sent."),
    )
    default_variant = forms.ModelChoiceField(
        label=_("Default if inconclusive"),
        queryset=Variant.objects.none(),
        required=False,
        empty_label=_("The first variant"),
    )

    def __init__(self, *args, variants=None, **kwargs):
        super().__init__(*args, **kwargs)
        if variants is not None:
            self.fields["default_variant"].queryset = variants
        self.fields["default_variant"].label_from_instance = lambda variant: (
            _("Variant %(label)s") % {"label": variant.label}
        )

    def clean(self):
        data = super().clean()
        if not data.get("enabled"):
            # Turning the test off: the other fields do not matter.
            for name in list(self.errors):
                if name != "enabled":
                    del self.errors[name]
        return data

    @classmethod
    def initial_for(cls, ab_test: ABTest | None) -> dict:
        if ab_test is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "test_share": ab_test.test_share,
            "metric": ab_test.metric,
            "duration_hours": ab_test.duration_hours,
            "confidence_level": f"{ab_test.confidence_level:.3f}",
            "min_sample": ab_test.min_sample,
            "default_variant": ab_test.default_variant_id,
        }


class VariantForm(forms.Form):
    subject = forms.CharField(
        label=_("Subject"),
        max_length=250,
        required=False,
        help_text=_("Empty: the template's subject. Merge fields work as in templates."),
    )
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=EmailTemplate.objects.none(),
        required=False,
        empty_label=_("The campaign's template"),
    )

    def __init__(self, *args, organization_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = EmailTemplate.objects.filter(
            organization_id=organization_id, is_archived=False
        ).order_by("name")
