"""Segment pages: the list, the create/edit form with its rule builder and live count (htmx), the
segment page (members with the rule that put each one in, recent arrivals and departures), refresh on
demand, and removing members from a static segment.

Viewing needs VIEW_SEGMENTS; anything that changes a segment, or previews one being edited, needs
MANAGE_SEGMENTS.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors, _back
from customers.forms_segments import (
    SegmentForm,
    apply_action,
    builder_tree,
    check,
    criteria_from_post,
    field_options,
    incomplete_rules,
)
from customers.models import Segment
from customers.segments import describe_criteria, selectors
from customers.services import segments as services

BUILDER = "customers/segments/_builder.html"
PREVIEW = "customers/segments/_preview.html"


def _nodes(node) -> list:
    found = [node]
    for child in node.children:
        found.extend(_nodes(child))
    return found


def _preview_context(request, criteria: dict) -> dict:
    """The live count of `criteria`, or why there is none: its errors by rule, for the rules' error slots.

    A rule without a field or a value yet (one just added) is "incomplete", not wrong: no red message for
    it while the user is still building (saving the form does show them).
    """
    valid, errors = check(criteria)
    nodes = _nodes(builder_tree(criteria))
    blank = incomplete_rules(criteria)
    shown = {key: messages for key, messages in errors.items() if key not in blank}
    count = None
    if valid is not None:
        count = selectors.segment_preview_count(actor=request.user, criteria=valid)
    return {
        "count": count,
        "errors": shown,
        "incomplete": bool(blank) and not shown,
        "slots": [(node.key, shown.get(node.key, [])) for node in nodes],
    }


def _kind_of(request, segment: Segment | None) -> str:
    if segment is not None:
        return segment.kind
    kind = request.POST.get("kind") or request.GET.get("kind")
    return kind if kind in Segment.Kind.values else Segment.Kind.DYNAMIC


# --- list and detail ------------------------------------------------------------------------------------


@requires(Capability.VIEW_SEGMENTS)
def segment_list(request):
    query = request.GET.get("q", "").strip()[:100]
    kind = request.GET.get("kind", "")
    page = selectors.segment_list_page(
        actor=request.user, query=query, kind=kind, cursor=request.GET.get("cursor")
    )
    params = request.GET.copy()
    params.pop("cursor", None)
    context = {
        "title": _("Segments"),
        "page": page,
        "query": query,
        "kind": kind,
        "kinds": Segment.Kind.choices,
        "filtered": bool(query or kind),
        "querystring": params.urlencode(),
        "can_manage": has_capability(request.user, Capability.MANAGE_SEGMENTS),
    }
    return render(request, "customers/segments/list.html", context)


@requires(Capability.VIEW_SEGMENTS)
def segment_detail(request, pk):
    segment = selectors.segment_get(actor=request.user, pk=pk)
    page = selectors.segment_members_page(
        actor=request.user, segment=segment, cursor=request.GET.get("cursor")
    )
    context = {
        "title": segment.name,
        "segment": segment,
        "page": page,
        "events": selectors.segment_recent_events(actor=request.user, segment=segment),
        "rules": describe_criteria(segment.criteria) if segment.kind == Segment.Kind.DYNAMIC else [],
        "is_dynamic": segment.kind == Segment.Kind.DYNAMIC,
        "can_manage": has_capability(request.user, Capability.MANAGE_SEGMENTS),
    }
    return render(request, "customers/segments/detail.html", context)


# --- create and edit --------------------------------------------------------------------------------------


def _form_page(request, *, segment: Segment | None):
    organization = selectors.organization_of(actor=request.user)
    form = SegmentForm(request.POST if request.method == "POST" else None, segment=segment)
    action = request.POST.get("builder_action")
    if request.method == "POST" and action:
        # Without htmx the builder's buttons submit the whole form: apply the action, save nothing.
        form.criteria = apply_action(criteria_from_post(request.POST, repair=True), action)
        form = _unbound_with(form, request)
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if segment is None:
                segment = services.segment_create(
                    organization=organization,
                    actor=request.user,
                    name=data["name"],
                    description=data["description"],
                    kind=data["kind"],
                    criteria=data["criteria"],
                )
            else:
                services.segment_update(
                    segment=segment,
                    actor=request.user,
                    name=data["name"],
                    description=data["description"],
                    criteria=data["criteria"],
                )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _saved_message(segment))
            return redirect("customers:segment_detail", pk=segment.pk)
    kind = form.chosen_kind
    preview = None
    if kind == Segment.Kind.DYNAMIC and (segment is not None or request.method == "POST"):
        preview = _preview_context(request, form.criteria)
        if form.is_bound and not form.criteria_errors:
            form.criteria_errors = preview["errors"]
    context = {
        "title": _("Edit %(name)s") % {"name": segment.name} if segment else _("New segment"),
        "form": form,
        "segment": segment,
        "kind": kind,
        "tree": form.builder(),
        "field_options": field_options(),
        "preview": preview,
        "cancel": _back(
            request,
            reverse("customers:segment_detail", args=[segment.pk])
            if segment
            else reverse("customers:segment_list"),
        ),
    }
    return render(request, "customers/segments/form.html", context)


def _saved_message(segment: Segment) -> str:
    if segment.kind == Segment.Kind.STATIC:
        return ngettext(
            "“%(name)s” is saved: %(count)d customer. Add more from the customer list.",
            "“%(name)s” is saved: %(count)d customers. Add more from the customer list.",
            segment.member_count,
        ) % {"name": segment.name, "count": segment.member_count}
    return ngettext(
        "“%(name)s” is saved: %(count)d customer matches its rules.",
        "“%(name)s” is saved: %(count)d customers match its rules.",
        segment.member_count,
    ) % {"name": segment.name, "count": segment.member_count}


def _unbound_with(form: SegmentForm, request) -> SegmentForm:
    """The same form, showing what was posted but no errors (the user is still building)."""
    fresh = SegmentForm(None, segment=form.segment, initial={k: request.POST.get(k, "") for k in form.fields})
    fresh.criteria = form.criteria
    return fresh


@requires(Capability.MANAGE_SEGMENTS)
def segment_create(request):
    return _form_page(request, segment=None)


@requires(Capability.MANAGE_SEGMENTS)
def segment_edit(request, pk):
    return _form_page(request, segment=selectors.segment_get(actor=request.user, pk=pk))


@require_POST
@requires(Capability.MANAGE_SEGMENTS)
def segment_builder(request):
    """htmx: the rule builder re-rendered from the posted form (after a field or operator changed, or a
    rule or group was added or removed), with the live count swapped in out of band."""
    criteria = apply_action(
        criteria_from_post(request.POST, repair=True), request.POST.get("builder_action", "")
    )
    kind = _kind_of(request, None)
    if not criteria["rules"] and "builder_action" not in request.POST:
        criteria["rules"].append({"field": ""})  # back from "static": start with one empty rule
    preview = _preview_context(request, criteria) if kind == Segment.Kind.DYNAMIC else None
    context = {
        "tree": builder_tree(criteria, preview["errors"] if preview else {}),
        "field_options": field_options(),
        "kind": kind,
        "preview": preview,
        "oob_preview": True,
    }
    return render(request, BUILDER, context)


@require_POST
@requires(Capability.MANAGE_SEGMENTS)
def segment_preview(request):
    """htmx: "N customers match" for the posted rules, and each rule's errors in its slot (out of band)."""
    return render(request, PREVIEW, {"preview": _preview_context(request, criteria_from_post(request.POST))})


# --- actions ------------------------------------------------------------------------------------------------


@require_POST
@requires(Capability.MANAGE_SEGMENTS)
def segment_delete(request, pk):
    segment = selectors.segment_get(actor=request.user, pk=pk)
    name = segment.name
    services.segment_delete(segment=segment, actor=request.user)
    messages.success(request, _("“%(name)s” is deleted.") % {"name": name})
    return redirect("customers:segment_list")


@require_POST
@requires(Capability.MANAGE_SEGMENTS)
def segment_refresh(request, pk):
    segment = selectors.segment_get(actor=request.user, pk=pk)
    try:
        added, removed = services.segment_refresh(segment=segment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("Refreshed: %(added)d joined, %(removed)d left, %(count)d members now.")
            % {"added": added, "removed": removed, "count": segment.member_count},
        )
    return redirect("customers:segment_detail", pk=segment.pk)


@require_POST
@requires(Capability.MANAGE_SEGMENTS)
def segment_remove_members(request, pk):
    segment = selectors.segment_get(actor=request.user, pk=pk)
    ids = []
    for value in request.POST.getlist("customer"):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    back = _back(request, reverse("customers:segment_detail", args=[segment.pk]))
    if not ids:
        messages.error(request, _("Choose the customers to remove."))
        return redirect(back)
    try:
        removed = services.segment_remove_members(segment=segment, customer_ids=ids, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            ngettext("%(count)d customer removed.", "%(count)d customers removed.", removed)
            % {"count": removed},
        )
    return redirect(back)
