"""The suppression list (SEND_CAMPAIGNS): addresses no campaign or sequence emails. Staff add an address by
hand and remove one (after a confirmation); unsubscribes, hard bounces and complaints add theirs
automatically (marketing/events.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.pagination import keyset_page
from crm.permissions import Capability, requires
from crm.views import _apply_errors
from marketing.forms_suppressions import SuppressionAddForm, SuppressionFilterForm
from marketing.selectors import suppressions as selectors
from marketing.services import suppressions as services

PER_PAGE = 50


def _list_page(request, *, add_form=None):
    filters = SuppressionFilterForm(request.GET or None)
    reason = q = ""
    if filters.is_valid():
        reason, q = filters.cleaned_data["reason"], filters.cleaned_data["q"]
    rows = selectors.suppression_list(actor=request.user, reason=reason, q=q)
    page = keyset_page(
        rows, ordering=("-created_at", "-id"), cursor=request.GET.get("cursor"), per_page=PER_PAGE
    )
    context = {
        "title": _("Suppressions"),
        "filters": filters,
        "filtered": bool(reason or q),
        "add_form": add_form or SuppressionAddForm(),
        "page": page,
        "count": selectors.capped_count(rows),
        "count_cap": selectors.COUNT_CAP,
        "querystring": urlencode({k: v for k, v in {"reason": reason, "q": q}.items() if v}),
    }
    return render(request, "marketing/suppressions/list.html", context)


@require_GET
@requires(Capability.SEND_CAMPAIGNS)
def suppression_list(request):
    return _list_page(request)


@require_POST
@requires(Capability.SEND_CAMPAIGNS)
def suppression_add(request):
    form = SuppressionAddForm(request.POST)
    if form.is_valid():
        try:
            suppression = services.suppression_add(actor=request.user, email=form.cleaned_data["email"])
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request, _("%(email)s is on the suppression list.") % {"email": suppression.email}
            )
            return redirect("marketing:suppression_list")
    return _list_page(request, add_form=form)


@require_http_methods(["GET", "POST"])
@requires(Capability.SEND_CAMPAIGNS)
def suppression_remove(request, pk):
    suppression = selectors.suppression_get(actor=request.user, pk=pk)
    if request.method == "POST":
        services.suppression_remove(actor=request.user, suppression=suppression)
        messages.success(request, _("%(email)s is off the suppression list.") % {"email": suppression.email})
        return redirect("marketing:suppression_list")
    context = {"title": _("Remove from the suppression list"), "suppression": suppression}
    return render(request, "marketing/suppressions/remove.html", context)
