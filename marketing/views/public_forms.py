"""The public lead capture form at /forms/<org-slug>/<form-slug>/: no login, one organization per slug.

How a request with no signed-in user reaches one organization's rows under row-level security: the
organization is found by slug in a short `system_context()` (id, name and slug of an active or trial
organization only: support/views/public_kb.py `public_tenant`), then everything runs in
`tenant_context(org)`, so RLS confines the form lookup and the submission's writes to that organization. An
unknown organization, an unknown form and a form that is not accepting submissions all answer 404.

Spam protection:
- a honeypot input, hidden from people (visually hidden, aria-hidden, out of the tab order, no autofill):
  a filled honeypot gets the same thank-you as a real submission and nothing is saved, so a bot learns
  nothing;
- a rate limit per client IP and form: RATE_LIMIT accepted submissions per RATE_WINDOW seconds, counted
  in the cache (one atomic INCR on a key that expires with the window); over it, a 429 page that says to
  wait. Only submissions that pass validation count, so a person correcting typos is never locked out.

Framing: the page keeps the site-wide `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`; a form is
put on a website as a link (the staff page gives the snippet), not in an <iframe>. Allowing framing would
need the clickjacking defences switched off for a page that writes data, and it would not work anyway: the
CSRF cookie is SameSite=Lax, which browsers do not send from inside a third-party frame, so every
embedded submission would be refused. docs/marketing.md says the same.

After a submission the browser is redirected to the same address with `?sent=1` (post/redirect/get), which
shows the thank-you text; a reload does not submit twice.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm.middleware import client_ip
from crm.rate_limits import over_limit
from crm.views import _apply_errors
from marketing.forms_leadforms import PublicLeadForm
from marketing.models import LeadForm
from marketing.services.forms import form_submission_create
from support.views.public_kb import public_tenant

RATE_LIMIT = 5
RATE_WINDOW = 10 * 60  # seconds


def _over_limit(request, lead_form: LeadForm) -> bool:
    """Count this submission; True when it is over the limit for its IP and form in the current window."""
    return over_limit(
        f"marketing-form:{lead_form.pk}", client_ip(request), allowed=RATE_LIMIT, window=RATE_WINDOW
    )


def _page(request, *, organization, lead_form, form=None, sent=False, status=200):
    context = {
        "title": lead_form.title,
        "organization": organization,
        "lead_form": lead_form,
        "form": form,
        "sent": sent,
    }
    return render(request, "marketing/public_forms/form.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def form_page(request, org_slug, slug):
    with public_tenant(org_slug) as organization:
        lead_form = (
            LeadForm.objects.filter(organization_id=organization.pk, slug=slug, is_active=True)
            .only(
                "id",
                "organization_id",
                "campaign_id",
                "sequence_id",
                "name",
                "slug",
                "title",
                "intro",
                "fields",
                "consent_text",
                "require_consent",
                "thank_you_text",
                "is_active",
            )
            .first()
        )
        if lead_form is None:
            raise Http404
        if request.method == "GET":
            if request.GET.get("sent") == "1":
                return _page(request, organization=organization, lead_form=lead_form, sent=True)
            return _page(
                request,
                organization=organization,
                lead_form=lead_form,
                form=PublicLeadForm(lead_form=lead_form),
            )
        form = PublicLeadForm(request.POST, lead_form=lead_form)
        if form.is_valid() or form.is_spam:
            if _over_limit(request, lead_form):
                return render(
                    request,
                    "marketing/public_forms/too_many.html",
                    {"title": lead_form.title, "organization": organization, "lead_form": lead_form},
                    status=429,
                )
            if form.is_spam:
                return _sent(organization, lead_form)
            try:
                form_submission_create(
                    lead_form=lead_form,
                    values=form.customer_values(),
                    consent=form.cleaned_data["consent"],
                    ip_address=client_ip(request) or None,
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                return _sent(organization, lead_form)
        return _page(request, organization=organization, lead_form=lead_form, form=form)


def _sent(organization, lead_form: LeadForm) -> HttpResponseRedirect:
    url = reverse("forms:form", kwargs={"org_slug": organization.slug, "slug": lead_form.slug})
    return HttpResponseRedirect(f"{url}?sent=1")
