"""Canned responses (macros): every agent reads them (and uses them from the ticket page); editing needs
MANAGE_SUPPORT_SETTINGS."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from support.forms import CannedResponseForm
from support.selectors import tickets as selectors
from support.services import canned as services

PER_PAGE = 50


@require_GET
@requires(Capability.WORK_TICKETS)
def canned_list(request):
    page = keyset_page(
        selectors.canned_list(actor=request.user),
        ordering=("title", "id"),
        cursor=request.GET.get("cursor"),
        per_page=PER_PAGE,
    )
    context = {
        "title": _("Canned responses"),
        "page": page,
        "can_edit": has_capability(request.user, Capability.MANAGE_SUPPORT_SETTINGS),
        "merge_fields": [
            (f"{{{{{name}}}}}", label) for name, (label, _read) in services.MERGE_FIELDS.items()
        ],
    }
    return render(request, "support/tickets/canned_list.html", context)


def _form_page(request, form, canned=None):
    context = {
        "title": _("Edit canned response") if canned else _("New canned response"),
        "form": form,
        "canned": canned,
        "merge_fields": [
            (f"{{{{{name}}}}}", label) for name, (label, _read) in services.MERGE_FIELDS.items()
        ],
    }
    return render(request, "support/tickets/canned_form.html", context)


@require_http_methods(["GET", "POST"])
@requires(Capability.MANAGE_SUPPORT_SETTINGS)
def canned_create(request):
    form = CannedResponseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            canned = services.canned_create(
                organization=request.user.organization, actor=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(title)s” is saved.") % {"title": canned.title})
            return redirect("support:canned_list")
    return _form_page(request, form)


@require_http_methods(["GET", "POST"])
@requires(Capability.MANAGE_SUPPORT_SETTINGS)
def canned_edit(request, pk):
    canned = selectors.canned_get(actor=request.user, pk=pk)
    form = CannedResponseForm(request.POST or None, initial={"title": canned.title, "body": canned.body})
    if request.method == "POST" and form.is_valid():
        try:
            services.canned_update(canned=canned, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(title)s” is saved.") % {"title": canned.title})
            return redirect("support:canned_list")
    return _form_page(request, form, canned)


@require_POST
@requires(Capability.MANAGE_SUPPORT_SETTINGS)
def canned_delete(request, pk):
    canned = selectors.canned_get(actor=request.user, pk=pk)
    services.canned_delete(canned=canned, actor=request.user)
    messages.success(request, _("“%(title)s” is deleted.") % {"title": canned.title})
    return redirect("support:canned_list")
