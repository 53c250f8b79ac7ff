"""The privacy settings page (MANAGE_PRIVACY_SETTINGS): the organization's retention periods and nightly
anonymization switch, with what they mean right now: how many customers the next run would anonymize, the
last runs, and which log partitions retention would drop next and what keeps the others."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from compliance import anonymization, retention
from compliance.forms_settings import PrivacySettingsForm
from compliance.services import settings as services
from crm.permissions import Capability, requires
from crm.views import _apply_errors


@require_http_methods(["GET", "POST"])
@requires(Capability.MANAGE_PRIVACY_SETTINGS)
def privacy_settings(request):
    organization_id = request.user.organization_id
    if organization_id is None:  # a platform superuser belongs to no organization
        return redirect("admin:index")
    settings = services.privacy_settings_get_or_create(organization_id=organization_id, actor=request.user)
    form = PrivacySettingsForm(request.POST or None, instance=settings)
    if request.method == "POST" and form.is_valid():
        try:
            services.privacy_settings_update(settings=settings, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Privacy and retention settings saved."))
            return redirect("compliance:settings")
    if form.is_bound:
        # The form wrote the rejected values onto the instance: the preview shows the saved ones.
        settings.refresh_from_db()
    plan = retention.plan_retention()
    context = {
        "title": _("Privacy & retention"),
        "form": form,
        "settings": settings,
        "preview": anonymization.preview_stale(organization_id=organization_id, settings=settings),
        "runs": anonymization.recent_runs(organization_id=organization_id),
        "retention_rows": retention.retention_report(organization_id=organization_id, plan=plan),
    }
    return render(request, "compliance/settings/page.html", context)
