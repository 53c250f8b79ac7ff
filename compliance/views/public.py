"""The public privacy request pages at /privacy-request/<org-slug>/: no login, one organization per slug.

A data subject files a GDPR or CCPA request, then proves the email address is theirs with the code the
request's service emails them (compliance/services/requests). How an anonymous request reaches one
organization's rows under row-level security is the public knowledge base's way
(support/views/public_kb.py `public_tenant`): the organization is found by slug in a short system context,
then everything runs in `tenant_context(org)`. An unknown slug, an unknown request id and a request of
another organization all answer 404.

What the pages never tell: whether the email matches a customer. The code goes to the address the subject
typed, matched or not, and every page reads the same either way.

Abuse: the form would otherwise be a way to make us email codes to anyone, so
- a honeypot input (hidden from people): a filled one gets the same "check your email" page and nothing is
  saved or sent;
- rate limits counted in the cache (one atomic INCR on a key that expires with its window): submissions per
  client IP and per email address, and new codes per request and per IP. Only submissions that pass
  validation count, so a person correcting a typo is never locked out. Over a limit: a 429 page.
- the code itself: five wrong tries kill it (the service counts them in its own transaction), after which
  only a new code helps, and new codes are rate-limited as above.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from compliance.forms_public import PublicRequestForm, VerificationCodeForm
from compliance.models import PrivacyRequest, RequestSource, RequestStatus
from compliance.selectors.requests import public_request_get
from compliance.services.requests import request_create, request_send_verification, request_verify
from compliance.services.requests.verification import verification_attempts_left
from crm.middleware import client_ip
from crm.rate_limits import over_limit
from crm.views import _apply_errors
from support.views.public_kb import public_tenant

# (accepted events, window in seconds) per limit.
SUBMIT_PER_IP = (5, 60 * 60)
SUBMIT_PER_EMAIL = (3, 60 * 60)
RESEND_PER_REQUEST = (3, 60 * 60)
RESEND_PER_IP = (10, 60 * 60)


def _over_limit(name: str, value: str, limit: tuple[int, int]) -> bool:
    allowed, window = limit
    return over_limit(f"privacy-public:{name}", value, allowed=allowed, window=window)


def _too_many(request, organization, status=429):
    return render(
        request,
        "compliance/public/too_many.html",
        {"title": _("Too many requests"), "organization": organization},
        status=status,
    )


def _verify_url(organization, privacy_request_id) -> str:
    return reverse("privacy_public:verify", kwargs={"org_slug": organization.slug, "pk": privacy_request_id})


@never_cache
@require_http_methods(["GET", "POST"])
def form_page(request, org_slug):
    with public_tenant(org_slug) as organization:
        if request.method == "GET":
            return _form(request, organization, PublicRequestForm())
        form = PublicRequestForm(request.POST)
        if not (form.is_valid() or form.is_spam):
            return _form(request, organization, form)
        email = (form.data.get("requester_email") or "").strip().lower()
        # Both limits are counted on every accepted submission (`|` does not short-circuit).
        over = _over_limit(
            "submit-ip", f"{organization.pk}:{client_ip(request)}", SUBMIT_PER_IP
        ) | _over_limit("submit-email", f"{organization.pk}:{email}", SUBMIT_PER_EMAIL)
        if over:
            return _too_many(request, organization)
        if form.is_spam:
            # The page a person sees after a real submission, with nothing saved and nothing sent.
            return _verify_page(request, organization, None, VerificationCodeForm())
        try:
            privacy_request = request_create(
                organization=organization,
                source=RequestSource.PUBLIC_FORM,
                actor=None,
                **form.request_values(),
            )
        except ValidationError as error:
            _apply_errors(form, error)
            return _form(request, organization, form)
        if privacy_request.status == RequestStatus.RECEIVED:
            request_send_verification(privacy_request=privacy_request, actor=None)
        return HttpResponseRedirect(_verify_url(organization, privacy_request.pk))


def _form(request, organization, form: PublicRequestForm):
    context = {
        "title": _("Privacy request to %(name)s") % {"name": organization.name},
        "organization": organization,
        "form": form,
    }
    return render(request, "compliance/public/form.html", context, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request, org_slug, pk):
    with public_tenant(org_slug) as organization:
        privacy_request = public_request_get(organization_id=organization.pk, pk=pk)
        if request.method == "GET":
            return _verify_page(request, organization, privacy_request, VerificationCodeForm())
        form = VerificationCodeForm(request.POST)
        if privacy_request.status != RequestStatus.VERIFYING:
            return HttpResponseRedirect(_verify_url(organization, privacy_request.pk))
        if form.is_valid():
            try:
                verified = request_verify(privacy_request=privacy_request, code=form.cleaned_data["code"])
            except ValidationError as error:
                # The code is dead (too many tries, or expired): only a new one helps.
                form.add_error("code", error)
            else:
                if verified:
                    return HttpResponseRedirect(_verify_url(organization, privacy_request.pk))
                left = verification_attempts_left(privacy_request)  # the service counted this attempt
                form.add_error(
                    "code",
                    _("That code is not right. %(left)s attempts left.") % {"left": left}
                    if left
                    else _("That code is not right, and it was the last attempt. Ask for a new code below."),
                )
        return _verify_page(request, organization, privacy_request, form, status=400)


@never_cache
@require_POST
def resend(request, org_slug, pk):
    with public_tenant(org_slug) as organization:
        privacy_request = public_request_get(organization_id=organization.pk, pk=pk)
        if privacy_request.status not in (RequestStatus.RECEIVED, RequestStatus.VERIFYING):
            return HttpResponseRedirect(_verify_url(organization, privacy_request.pk))
        over = _over_limit("resend-request", str(privacy_request.pk), RESEND_PER_REQUEST) | _over_limit(
            "resend-ip", f"{organization.pk}:{client_ip(request)}", RESEND_PER_IP
        )
        if over:
            return _too_many(request, organization)
        request_send_verification(privacy_request=privacy_request, actor=None)
        return HttpResponseRedirect(f"{_verify_url(organization, privacy_request.pk)}?resent=1")


def _verify_page(request, organization, privacy_request: PrivacyRequest | None, form, status=200):
    """The page of a request's state: the code form while verifying, then what happens next."""
    if privacy_request is None:  # the honeypot's decoy: what a real submission's page looks like
        stage, dead = "verifying", False
    else:
        stage = {
            RequestStatus.RECEIVED: "verifying",
            RequestStatus.VERIFYING: "verifying",
            RequestStatus.NOT_APPLICABLE: "not_applicable",
            RequestStatus.REJECTED: "closed",
            RequestStatus.COMPLETED: "closed",
        }.get(privacy_request.status, "verified")
        sent_at = privacy_request.verification_sent_at
        dead = stage == "verifying" and (
            not privacy_request.verification_code_hash
            or privacy_request.verification_attempts >= PrivacyRequest.MAX_VERIFICATION_ATTEMPTS
            or sent_at is None
            or sent_at + PrivacyRequest.VERIFICATION_CODE_TTL < timezone.now()
        )
    context = {
        "title": _("Confirm your privacy request"),
        "organization": organization,
        "privacy_request": privacy_request,
        "stage": stage,
        "code_dead": dead,
        "form": form,
        "resent": request.GET.get("resent") == "1",
    }
    return render(request, "compliance/public/verify.html", context, status=status)
