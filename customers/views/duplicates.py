"""Duplicates: the list of likely duplicate pairs, "not a duplicate" (htmx, with undo), and compare & merge."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from crm.permissions import Capability, requires
from customers import duplicates, merging
from customers.services import merging as services

MERGED_SESSION_KEY = "customers.duplicates.merged"
SIDES = (("a", gettext_lazy("first customer")), ("b", gettext_lazy("second customer")))


class MergeForm(forms.Form):
    """Which customer survives, and for each field group whose value it keeps ("a" or "b" of the page)."""

    survivor = forms.ChoiceField(choices=SIDES, label=gettext_lazy("Keep"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for group in merging.FIELD_GROUPS:
            self.fields[f"pick_{group.name}"] = forms.ChoiceField(
                choices=SIDES, required=False, label=group.label
            )

    def service_arguments(self, preview: duplicates.MergePreview) -> dict:
        """The survivor's side as the target, the other as the source, each pick as "target" or "source".
        A field whose values are the same on both sides has no pick: it keeps the target's."""
        survivor = self.cleaned_data["survivor"]
        target, source = (preview.a, preview.b) if survivor == "a" else (preview.b, preview.a)
        choices = {}
        for group in merging.FIELD_GROUPS:
            side = self.cleaned_data.get(f"pick_{group.name}")
            if side:
                choices[group.name] = services.TARGET if side == survivor else services.SOURCE
        return {"target": target, "source": source, "field_choices": choices}

    def survivor_shown(self, preview: duplicates.MergePreview) -> str:
        """The survivor the page shows as picked: what was posted, else the default."""
        posted = self.data.get("survivor") if self.is_bound else None
        return posted if posted in ("a", "b") else preview.default_survivor

    def mark_picks(self, preview: duplicates.MergePreview) -> None:
        """Set each row's shown pick: what was posted, else the row's default."""
        for row in preview.rows:
            posted = self.data.get(f"pick_{row.name}") if self.is_bound else None
            row.picked = posted if posted in ("a", "b") else row.default


def _next_or(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _status_context(request) -> dict:
    status = duplicates.duplicates_status(organization_id=request.user.organization_id)
    return {"status": status, "since": status.computed_at.isoformat() if status.computed_at else ""}


@requires(Capability.MERGE_CUSTOMERS)
@require_http_methods(["GET", "HEAD", "POST"])
def duplicate_list(request):
    """The likely duplicate pairs as the last refresh stored them, with when that was.

    POST is "Refresh now": enqueue a refresh of the organization's pairs. Through htmx it answers with the
    status panel ("refreshing…"), which polls this view (GET ?part=status) until the refresh asked for has
    run, then has htmx reload the page (HX-Refresh) to show the new pairs."""
    if request.method == "POST":
        duplicates.duplicate_pairs_refresh_request(actor=request.user)
        if request.htmx:
            return render(request, "customers/duplicates/_status.html", _status_context(request))
        messages.info(request, _("Looking for duplicates again. The list updates when that is done."))
        return redirect("customers:duplicates")
    if request.htmx and request.GET.get("part") == "status":
        context = _status_context(request)
        if not context["status"].pending and context["since"] != request.GET.get("since", ""):
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"  # the new pairs are in: show them
            return response
        return render(request, "customers/duplicates/_status.html", context)
    page = duplicates.duplicates_page(actor=request.user, cursor=request.GET.get("cursor"))
    merged = request.session.pop(MERGED_SESSION_KEY, None)
    context = {"page": page, "merged": merged, "title": _("Duplicates"), **_status_context(request)}
    return render(request, "customers/duplicates/list.html", context)


@requires(Capability.MERGE_CUSTOMERS)
@require_POST
def duplicate_dismiss(request, a, b):
    """Mark the pair "not a duplicate" (or, with action=undo, take the mark back). From the list, through
    htmx, the pair's rows are swapped for a one-line confirmation with an undo button, and back."""
    first, second = duplicates.customer_pair(actor=request.user, a_id=a, b_id=b)
    undo = request.POST.get("action") == "undo"
    if undo:
        services.duplicate_restore(a=first, b=second, actor=request.user)
    else:
        services.duplicate_dismiss(a=first, b=second, actor=request.user)
    if request.htmx:
        if undo:
            pair = duplicates.one_pair(actor=request.user, a=first, b=second)
            return render(request, "customers/duplicates/_pair.html", {"pair": pair})
        return render(request, "customers/duplicates/_dismissed.html", {"a": first, "b": second})
    if undo:
        messages.success(
            request, _("%(a)s and %(b)s may show up as duplicates again.") % {"a": first, "b": second}
        )
    else:
        messages.success(
            request, _("%(a)s and %(b)s are marked as not duplicates.") % {"a": first, "b": second}
        )
    return redirect(_next_or(request, reverse("customers:duplicates")))


@requires(Capability.MERGE_CUSTOMERS)
def duplicate_merge(request, a, b):
    """Compare two customers field by field, pick what survives, and merge (POST)."""
    preview = duplicates.merge_preview(actor=request.user, a_id=a, b_id=b)
    form = MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        arguments = form.service_arguments(preview)
        try:
            survivor = services.customers_merge(actor=request.user, **arguments)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[MERGED_SESSION_KEY] = {
                "id": str(survivor.pk),
                "name": survivor.display_name,
                "number": survivor.customer_number,
                "removed": arguments["source"].customer_number,
            }
            return redirect("customers:duplicates")
    form.mark_picks(preview)
    context = {
        "preview": preview,
        "form": form,
        "survivor": form.survivor_shown(preview),
        "sides": [("a", preview.a), ("b", preview.b)],
        "next": _next_or(request, reverse("customers:duplicates")),
        "title": _("Compare & merge"),
    }
    return render(request, "customers/duplicates/merge.html", context)
