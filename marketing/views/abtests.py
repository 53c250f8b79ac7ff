"""A/B tests: the campaign's test page (settings and variants, editable until the send starts), the report
panel the campaign page lazy-loads (htmx), and "decide now".

Every object is looked up within the user's organization, so another organization's campaign or variant
is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from marketing import abtest
from marketing.forms_abtests import ABTestSettingsForm, VariantForm
from marketing.models import ABTest, Campaign, Variant
from marketing.services import abtests as services


def _campaign(request, pk) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("organization", "template"),
        organization_id=request.user.organization_id,
        pk=pk,
    )


def _ab_test(campaign: Campaign) -> ABTest | None:
    return (
        ABTest.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .select_related("campaign", "winner", "default_variant")
        .first()
    )


def _variants(campaign: Campaign):
    return Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign).select_related(
        "template"
    )


def _variant(request, campaign: Campaign, variant_pk) -> Variant:
    return get_object_or_404(
        Variant.objects.select_related("campaign"),
        organization_id=request.user.organization_id,
        campaign=campaign,
        pk=variant_pk,
    )


def _campaign_url(campaign: Campaign) -> str | None:
    """The campaign's page (the campaigns area), when it exists."""
    try:
        return reverse("marketing:campaign_detail", args=[campaign.pk])
    except NoReverseMatch:
        return None


def _edit_page(request, campaign, *, settings_form=None, variant_forms=None, add_form=None, status=200):
    ab_test = _ab_test(campaign)
    variants = list(_variants(campaign))
    variant_forms = variant_forms or {}
    settings_form = settings_form or ABTestSettingsForm(
        initial=ABTestSettingsForm.initial_for(ab_test), variants=_variants(campaign)
    )
    org_id = campaign.organization_id
    rows = [
        (
            variant,
            variant_forms.get(variant.pk)
            or VariantForm(
                prefix=f"variant-{variant.label}",
                organization_id=org_id,
                initial={"subject": variant.subject, "template": variant.template_id},
            ),
        )
        for variant in variants
    ]
    context = {
        "title": _("A/B test: %(campaign)s") % {"campaign": campaign.name},
        "campaign": campaign,
        "campaign_url": _campaign_url(campaign),
        "ab_test": ab_test,
        "rows": rows,
        "settings_form": settings_form,
        "add_form": add_form or VariantForm(prefix="new", organization_id=org_id),
        "can_add": len(variants) < len(services.LABELS),
        "editable": services.is_editable(campaign, ab_test),
        "problems": services.abtest_problems(campaign=campaign) if ab_test else [],
    }
    return render(request, "marketing/abtests/edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_ab_edit(request, pk):
    """The test's settings: on or off, share, metric, duration, confidence, minimum sample, default."""
    campaign = _campaign(request, pk)
    if request.method == "GET":
        return _edit_page(request, campaign)
    form = ABTestSettingsForm(request.POST, variants=_variants(campaign))
    if form.is_valid():
        data = dict(form.cleaned_data)
        enabled = data.pop("enabled")
        try:
            if enabled:
                services.abtest_configure(campaign=campaign, actor=request.user, enabled=True, **data)
            else:
                services.abtest_configure(campaign=campaign, actor=request.user, enabled=False)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            if enabled:
                messages.success(request, _("The A/B test settings are saved."))
            else:
                messages.success(request, _("The A/B test is off: everyone gets the campaign's email."))
            return redirect("marketing:campaign_ab_edit", pk=campaign.pk)
    return _edit_page(request, campaign, settings_form=form)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_ab_variant_add(request, pk):
    campaign = _campaign(request, pk)
    form = VariantForm(request.POST, prefix="new", organization_id=campaign.organization_id)
    if form.is_valid():
        try:
            variant = services.variant_create(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Variant %(label)s is added.") % {"label": variant.label})
            return redirect("marketing:campaign_ab_edit", pk=campaign.pk)
    return _edit_page(request, campaign, add_form=form)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_ab_variant_edit(request, pk, variant_pk):
    campaign = _campaign(request, pk)
    variant = _variant(request, campaign, variant_pk)
    form = VariantForm(
        request.POST, prefix=f"variant-{variant.label}", organization_id=campaign.organization_id
    )
    if form.is_valid():
        try:
            services.variant_update(variant=variant, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Variant %(label)s is saved.") % {"label": variant.label})
            return redirect("marketing:campaign_ab_edit", pk=campaign.pk)
    return _edit_page(request, campaign, variant_forms={variant.pk: form})


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_ab_variant_delete(request, pk, variant_pk):
    campaign = _campaign(request, pk)
    variant = _variant(request, campaign, variant_pk)
    try:
        services.variant_delete(variant=variant, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Variant %(label)s is removed.") % {"label": variant.label})
    return redirect("marketing:campaign_ab_edit", pk=campaign.pk)


def _panel(request, campaign):
    ab_test = _ab_test(campaign)
    variants = list(_variants(campaign)) if ab_test else []
    context = {
        "campaign": campaign,
        "ab_test": ab_test,
        "report": abtest.report(ab_test=ab_test, variants=variants, time_zone=campaign.organization.time_zone)
        if ab_test
        else None,
        "can_manage": has_capability(request.user, Capability.MANAGE_CAMPAIGNS),
        "editable": services.is_editable(campaign, ab_test),
        "now": timezone.now(),
    }
    return render(request, "marketing/abtests/_panel.html", context)


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_ab_panel(request, pk):
    """The report panel (an htmx partial on the campaign page): each variant's numbers, the metric as a
    bar chart, the confidence and the outcome."""
    return _panel(request, _campaign(request, pk))


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_ab_decide(request, pk):
    """Decide a running test now instead of at the end of its duration."""
    campaign = _campaign(request, pk)
    ab_test = _ab_test(campaign)
    running = ab_test is not None and ab_test.status == ABTest.Status.RUNNING
    if running:
        ab_test = services.abtest_decide(ab_test=ab_test, actor=request.user)
    if request.htmx:  # the panel shows the outcome in place
        return _panel(request, campaign)
    if running:
        messages.success(request, ab_test.explanation)
    else:
        messages.error(request, _("Only a running A/B test can be decided."))
    return redirect(_campaign_url(campaign) or reverse("marketing:campaign_ab_edit", args=[campaign.pk]))
