"""Lead capture forms inside the CRM: the list, the editor, and a form's page with its public address, the
snippet to put it on a website, its numbers and its submissions.

Reading needs VIEW_CAMPAIGNS (a campaign's page links to its forms for everyone who can see campaigns);
creating, editing and opening / closing a form need MANAGE_CAMPAIGNS. Visitors use the public page
(marketing/views/public_forms.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from marketing.forms_leadforms import LeadFormFilterForm, LeadFormForm
from marketing.models import LeadForm
from marketing.selectors import forms as selectors
from marketing.services import forms as services

VIEW = Capability.VIEW_CAMPAIGNS
MANAGE = Capability.MANAGE_CAMPAIGNS
EDITED_FIELDS = (
    "campaign",
    "name",
    "slug",
    "title",
    "intro",
    "consent_text",
    "require_consent",
    "thank_you_text",
    "sequence",
    "is_active",
)


def public_url(request, lead_form: LeadForm) -> str:
    """The absolute public address of a form (what goes on a website or in a post)."""
    return request.build_absolute_uri(
        reverse("forms:form", kwargs={"org_slug": request.user.organization.slug, "slug": lead_form.slug})
    )


@requires(VIEW)
def form_list(request):
    filters = LeadFormFilterForm(request.GET or None)
    values = filters.cleaned_data if filters.is_valid() else {}
    query, campaign_id, state = values.get("q", ""), values.get("campaign"), values.get("state", "")
    page = selectors.lead_form_list(
        actor=request.user,
        query=query,
        campaign_id=campaign_id,
        state=state,
        cursor=request.GET.get("cursor"),
    )
    base = {
        key: value
        for key, value in (("q", query), ("campaign", campaign_id or ""), ("state", state))
        if value
    }
    context = {
        "title": _("Lead forms"),
        "filters": filters,
        "page": page,
        "forms": page.items,
        "querystring": urlencode(base),
        "filtered": bool(base),
        "can_manage": has_capability(request.user, MANAGE),
    }
    return render(request, "marketing/forms/list.html", context)


def _editor(request, form, *, lead_form=None):
    context = {
        "form": form,
        "lead_form": lead_form,
        "creating": lead_form is None,
        "has_campaigns": len(form.fields["campaign"].choices) > 1,
        "title": _("New lead form") if lead_form is None else _("Edit %(name)s") % {"name": lead_form.name},
    }
    return render(request, "marketing/forms/form.html", context)


def _changes(form) -> dict:
    return {**{name: form.cleaned_data[name] for name in EDITED_FIELDS}, "fields": form.cleaned_data["asked"]}


@requires(MANAGE)
def form_create(request):
    campaigns, sequences = selectors.form_choices(actor=request.user)
    form = LeadFormForm.for_form(
        None,
        request.POST or None,
        campaigns=campaigns,
        sequences=sequences,
        campaign_id=request.GET.get("campaign", ""),
    )
    if request.method == "POST" and form.is_valid():
        try:
            lead_form = services.lead_form_create(
                organization=request.user.organization, actor=request.user, **_changes(form)
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(name)s” is saved.") % {"name": lead_form.name})
            return redirect("marketing:form_detail", pk=lead_form.pk)
    return _editor(request, form)


@requires(MANAGE)
def form_edit(request, pk):
    lead_form = selectors.lead_form_get(actor=request.user, pk=pk)
    campaigns, sequences = selectors.form_choices(actor=request.user, current=lead_form)
    form = LeadFormForm.for_form(lead_form, request.POST or None, campaigns=campaigns, sequences=sequences)
    if request.method == "POST" and form.is_valid():
        try:
            lead_form = services.lead_form_update(lead_form=lead_form, actor=request.user, **_changes(form))
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(name)s” is saved.") % {"name": lead_form.name})
            return redirect("marketing:form_detail", pk=lead_form.pk)
    return _editor(request, form, lead_form=lead_form)


@requires(VIEW)
def form_detail(request, pk):
    lead_form = selectors.lead_form_get(actor=request.user, pk=pk)
    page = selectors.submission_page(
        actor=request.user, lead_form=lead_form, cursor=request.GET.get("cursor")
    )
    url = public_url(request, lead_form)
    labels = dict(LeadForm.FIELD_CHOICES)
    for submission in page.items:
        submission.entered = [(labels.get(k, k), v) for k, v in submission.data.items() if k != "email"]
    context = {
        "title": lead_form.name,
        "lead_form": lead_form,
        "counts": selectors.submission_counts(actor=request.user, lead_form=lead_form),
        "page": page,
        "submissions": page.items,
        "asked_labels": [labels[name] for name in lead_form.fields if name in labels],
        "public_url": url,
        # Shown escaped on the page; the title is escaped inside it too, so pasted on a website it is text.
        "link_snippet": f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(lead_form.title)}</a>',
        "can_manage": has_capability(request.user, MANAGE),
        "can_view_customers": has_capability(request.user, Capability.VIEW_CUSTOMERS),
    }
    return render(request, "marketing/forms/detail.html", context)


@requires(MANAGE)
@require_POST
def form_set_active(request, pk):
    lead_form = selectors.lead_form_get(actor=request.user, pk=pk)
    active = request.POST.get("active") == "1"
    services.lead_form_set_active(lead_form=lead_form, actor=request.user, active=active)
    if active:
        messages.success(request, _("“%(name)s” is accepting submissions.") % {"name": lead_form.name})
    else:
        messages.success(request, _("“%(name)s” is closed to submissions.") % {"name": lead_form.name})
    return redirect("marketing:form_detail", pk=lead_form.pk)
