"""The public survey page at /survey/<token>/: no login, one survey per signed token (support/surveys.py).

How the request reaches one organization's rows under row-level security: the token is verified first (no
database access); it names its organization, which is read in a short `system_context()` (id, name and
status only; a suspended or cancelled organization's links answer 404); everything else runs in
`tenant_context(organization)`, so RLS confines the survey lookup to the organization the signature
vouches for, on top of the explicit `organization_id=` filters.

Refusals: a token that does not verify, 400; an expired link or survey, 410; a survey that no longer exists,
404; a second answer, 409 with "already answered" (a GET after answering shows the thank-you page). GET never
changes anything: the one-click ratings in the email (`?score=N`) only preselect the score.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from support import surveys
from support.forms_surveys import SurveyAnswerForm
from support.models import Survey

REFUSALS = {
    "invalid": (
        400,
        _("This survey link is not valid"),
        _("The link may have been cut or changed. Open it again from the email we sent you."),
    ),
    "expired": (
        410,
        _("This survey has closed"),
        _("Survey links work for a limited time, and this one has expired. Thank you all the same."),
    ),
    "missing": (
        404,
        _("This survey is no longer available"),
        _("There is nothing to answer here any more."),
    ),
}


def _refused(request, reason: str, *, organization: Organization | None = None) -> HttpResponse:
    status, heading, text = REFUSALS[reason]
    context = {
        "title": heading,
        "heading": heading,
        "text": text,
        "reason": reason,
        "organization": organization,
    }
    return render(request, "support/surveys/refused.html", context, status=status)


def _organization(link: surveys.SurveyLink) -> Organization | None:
    with system_context():
        return (
            Organization.objects.filter(
                pk=link.organization_id, status__in=(Organization.Status.ACTIVE, Organization.Status.TRIAL)
            )
            .only("id", "name", "slug")
            .first()
        )


def _initial_score(request, kind: str) -> int | None:
    try:
        score = int(request.GET.get("score", ""))
    except ValueError:
        return None
    return score if score in surveys.SCALES[kind] else None


def _page(request, *, organization, survey, form, status=200, state="form") -> HttpResponse:
    context = {
        "title": _("Your feedback"),
        "organization": organization,
        "survey": survey,
        "ticket": survey.ticket if survey.ticket_id else None,
        "form": form,
        "state": state,
        "is_nps": survey.kind == Survey.Kind.NPS,
    }
    return render(request, "support/surveys/answer.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def answer(request, token):
    try:
        link = surveys.read_token(token)
    except signing.SignatureExpired:
        return _refused(request, "expired")
    except signing.BadSignature:
        return _refused(request, "invalid")
    organization = _organization(link)
    if organization is None:
        return _refused(request, "missing")
    with tenant_context(organization.pk):
        survey = (
            Survey.objects.select_related("ticket")
            .filter(pk=link.survey_id, organization_id=organization.pk)
            .first()
        )
        if survey is None:
            return _refused(request, "missing", organization=organization)
        if survey.responded_at:
            if request.method == "POST":
                return _page(
                    request, organization=organization, survey=survey, form=None, status=409, state="already"
                )
            return _page(request, organization=organization, survey=survey, form=None, state="done")
        if survey.expires_at <= timezone.now():
            return _refused(request, "expired", organization=organization)
        if request.method == "POST":
            form = SurveyAnswerForm(request.POST, kind=survey.kind)
            if form.is_valid():
                try:
                    surveys.survey_answer(
                        survey=survey, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"]
                    )
                except surveys.SurveyClosed as closed:
                    if closed.reason == "expired":
                        return _refused(request, "expired", organization=organization)
                    return _page(
                        request,
                        organization=organization,
                        survey=survey,
                        form=None,
                        status=409,
                        state="already",
                    )
                return redirect(request.path)
            return _page(request, organization=organization, survey=survey, form=form, status=400)
        form = SurveyAnswerForm(initial={"score": _initial_score(request, survey.kind)}, kind=survey.kind)
        return _page(request, organization=organization, survey=survey, form=form)
