"""The staff side of GDPR and CCPA requests: the queue (VIEW_PRIVACY_REQUESTS), logging a request
(SUBMIT_PRIVACY_REQUESTS), each request's page with its timeline, and the workflow steps
(PROCESS_PRIVACY_REQUESTS). A step refused by the service re-renders the page with the error beside the form
(status 200, so anything the service committed, such as a verification attempt, stays)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance import forms_requests as forms
from compliance.selectors import requests as selectors
from compliance.services import requests as services
from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from customers.models import Customer

FILTER_KEYS = ("kind", "request_type", "status", "assignee", "overdue")


@require_GET
@requires(Capability.VIEW_PRIVACY_REQUESTS)
def request_list(request):
    users = list(selectors.assignable_users(actor=request.user))
    filter_form = forms.QueueFilterForm(request.GET or None, users=users)
    queue = selectors.request_queue(
        actor=request.user, filters=filter_form.filters(), cursor=request.GET.get("cursor")
    )
    querystring = urlencode({k: request.GET[k] for k in FILTER_KEYS if request.GET.get(k)})
    context = {
        "title": _("Privacy requests"),
        "filter_form": filter_form,
        "queue": queue,
        "page": queue,
        "querystring": querystring,
        "current_status": filter_form.filters().get("status", "open"),
        "filtered": any(request.GET.get(k) for k in FILTER_KEYS),
        "can_submit": has_capability(request.user, Capability.SUBMIT_PRIVACY_REQUESTS),
    }
    return render(request, "compliance/requests/list.html", context)


@require_http_methods(["GET", "POST"])
@requires(Capability.SUBMIT_PRIVACY_REQUESTS)
def request_create(request):
    organization = request.user.organization
    initial = {}
    customer_id = request.GET.get("customer")
    if customer_id:
        customer = Customer.objects.filter(organization_id=organization.pk, pk__in=[customer_id]).first()
        if customer is not None:
            initial = {
                "customer": f"C-{customer.number:06d}",
                "requester_name": f"{customer.first_name} {customer.last_name}".strip(),
                "requester_email": customer.email,
            }
    form = forms.RequestCreateForm(request.POST or None, initial=initial, organization=organization)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            privacy_request = services.request_create(
                organization=organization,
                kind=data["kind"],
                request_type=data["request_type"],
                requester_name=data["requester_name"],
                requester_email=data["requester_email"],
                customer=data["customer"],
                details=data["details"],
                rectification=data["rectification"],
                resident_state=data["resident_state"],
                actor=request.user,
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(request)s is logged.") % {"request": privacy_request})
            if has_capability(request.user, Capability.VIEW_PRIVACY_REQUESTS):
                return redirect(_detail_url(privacy_request))
            return redirect("customers:list")
    context = {"title": _("Log a privacy request"), "form": form}
    return render(request, "compliance/requests/form.html", context)


def _detail_url(privacy_request) -> str:
    from django.urls import reverse

    return reverse(
        "compliance:request_detail",
        kwargs={"kind": services.kind_of(privacy_request), "pk": privacy_request.pk},
    )


def _detail_page(request, privacy_request, *, bound: dict | None = None, status: int = 200):
    """The request's page; `bound` holds the one action form being re-shown with its errors."""
    can_process = has_capability(request.user, Capability.PROCESS_PRIVACY_REQUESTS)
    users = list(selectors.assignable_users(actor=request.user)) if can_process else []
    action_forms = {
        "extend": forms.ExtendForm(prefix="extend"),
        "reject": forms.ReasonForm(prefix="reject"),
        "mark_verified": forms.MarkVerifiedForm(prefix="verified"),
        "verify_code": forms.VerifyCodeForm(prefix="code"),
        "link_customer": forms.LinkCustomerForm(
            prefix="link", organization_id=privacy_request.organization_id
        ),
        "assign": forms.AssignForm(
            prefix="assign",
            users=users,
            initial={"assignee": str(privacy_request.assigned_to_id or "")},
        ),
        **(bound or {}),
    }
    job = privacy_request.result.get("job") or {}
    context = {
        "title": str(privacy_request),
        "privacy_request": privacy_request,
        "kind": services.kind_of(privacy_request),
        "facts": selectors.deadline_facts(
            status=privacy_request.status, due_at=privacy_request.due_at, now=_now()
        ),
        "timeline": selectors.request_timeline(privacy_request=privacy_request),
        "can_process": can_process,
        "forms": action_forms,
        "job": job,
        "attempts_left": max(
            0, privacy_request.MAX_VERIFICATION_ATTEMPTS - privacy_request.verification_attempts
        ),
        "open_action": next(iter(bound)) if bound else "",
        "corrections": [
            (Customer._meta.get_field(name).verbose_name, value)
            for name, value in (getattr(privacy_request, "rectification", None) or {}).items()
        ],
    }
    return render(request, "compliance/requests/detail.html", context, status=status)


def _now():
    from django.utils import timezone

    return timezone.now()


@require_GET
@requires(Capability.VIEW_PRIVACY_REQUESTS)
def request_detail(request, kind, pk):
    privacy_request = selectors.request_get(actor=request.user, kind=kind, pk=pk)
    return _detail_page(request, privacy_request)


@require_GET
@requires(Capability.VIEW_PRIVACY_REQUESTS)
def request_progress(request, kind, pk):
    """The htmx poll of a queued export or erasure: the status box, polling again while the job runs."""
    privacy_request = selectors.request_get(actor=request.user, kind=kind, pk=pk)
    context = {
        "privacy_request": privacy_request,
        "kind": kind,
        "job": privacy_request.result.get("job") or {},
        "can_process": has_capability(request.user, Capability.PROCESS_PRIVACY_REQUESTS),
    }
    response = render(request, "compliance/requests/_progress.html", context)
    if privacy_request.status != "processing" or (context["job"].get("state") != "queued"):
        # Done (or failed): have htmx reload the whole page so the result and actions show.
        response["HX-Refresh"] = "true"
    return response


def _step(request, kind, pk, *, name: str, form_class=None, form_kwargs=None, call, done: str):
    """One workflow step: validate the step's form, call the service, then back to the page with a
    message, or the page again with the errors."""
    privacy_request = selectors.request_get(actor=request.user, kind=kind, pk=pk)
    form = None
    if form_class is not None:
        form = form_class(request.POST, **(form_kwargs or {}))
        if not form.is_valid():
            return _detail_page(request, privacy_request, bound={name: form})
    try:
        call(privacy_request, form.cleaned_data if form else {})
    except ValidationError as error:
        if form is None:
            messages.error(request, " ".join(error.messages))
            return redirect(_detail_url(privacy_request))
        _apply_errors(form, error)
        return _detail_page(request, privacy_request, bound={name: form})
    messages.success(request, done % {"request": privacy_request})
    return redirect(_detail_url(privacy_request))


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_send_code(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="send_code",
        call=lambda r, d: services.request_send_verification(privacy_request=r, actor=request.user),
        done=_("A verification code for %(request)s was emailed to the requester."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_verify_code(request, kind, pk):
    """Staff type the code the requester read out (on the phone). A wrong code uses an attempt, and the
    page answers 200 so that the service's committed attempt counter is not rolled back."""
    privacy_request = selectors.request_get(actor=request.user, kind=kind, pk=pk)
    form = forms.VerifyCodeForm(request.POST, prefix="code")
    if form.is_valid():
        try:
            verified = services.request_verify(
                privacy_request=privacy_request, code=form.cleaned_data["code"]
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            if verified:
                messages.success(request, _("%(request)s is verified.") % {"request": privacy_request})
                return redirect(_detail_url(privacy_request))
            left = max(0, privacy_request.MAX_VERIFICATION_ATTEMPTS - privacy_request.verification_attempts)
            form.add_error("code", _("Wrong code. %(n)d attempts left.") % {"n": left})
    return _detail_page(request, privacy_request, bound={"verify_code": form})


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_mark_verified(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="mark_verified",
        form_class=forms.MarkVerifiedForm,
        form_kwargs={"prefix": "verified"},
        call=lambda r, d: services.request_mark_verified(
            privacy_request=r, actor=request.user, note=d["note"]
        ),
        done=_("%(request)s is verified."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_extend(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="extend",
        form_class=forms.ExtendForm,
        form_kwargs={"prefix": "extend"},
        call=lambda r, d: services.request_extend(
            privacy_request=r, actor=request.user, reason=d["reason"], days=d["days"]
        ),
        done=_("The deadline of %(request)s is extended; the requester was told."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_reject(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="reject",
        form_class=forms.ReasonForm,
        form_kwargs={"prefix": "reject"},
        call=lambda r, d: services.request_reject(privacy_request=r, actor=request.user, reason=d["reason"]),
        done=_("%(request)s is rejected; the requester was told why."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_assign(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="assign",
        form_class=forms.AssignForm,
        form_kwargs={"prefix": "assign", "users": list(selectors.assignable_users(actor=request.user))},
        call=lambda r, d: services.request_assign(
            privacy_request=r, actor=request.user, assignee=d["assignee"]
        ),
        done=_("%(request)s is reassigned."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_link_customer(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="link_customer",
        form_class=forms.LinkCustomerForm,
        form_kwargs={"prefix": "link", "organization_id": request.user.organization_id},
        call=lambda r, d: services.request_link_customer(
            privacy_request=r, actor=request.user, customer=d["customer"]
        ),
        done=_("%(request)s is linked to the customer."),
    )


@require_POST
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def request_process(request, kind, pk):
    return _step(
        request,
        kind,
        pk,
        name="process",
        call=lambda r, d: services.request_process(privacy_request=r, actor=request.user),
        done=_("%(request)s is being processed."),
    )
