"""The pipeline board (drag and drop, keyboard "Move to…"), the opportunity list (filters, keyset pages, CSV
export), the deal form, and the opportunity page with its actions (move, win, lose, reopen) and history.

Every deal is read through `visible_opportunities(actor=...)` (sales/selectors), so a deal the user may
not see answers 404 here whatever the action."""

from __future__ import annotations

import csv
import datetime
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from compliance.access_log import record_list_export
from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from crm.tenancy import tenant_context
from crm.views import _apply_errors, _back
from customers.exporting import spreadsheet_safe
from marketing.selectors.campaigns import campaign_options
from sales.filters import OpportunityFilter
from sales.forms import BoardFilterForm, LoseForm, MoveForm, OpportunityForm, ReopenForm
from sales.models import Stage
from sales.selectors import opportunities as selectors
from sales.services import opportunities as services
from sales.services.pipelines import pipeline_ensure_default
from sales.tables import OpportunityTable

PER_PAGE = 50


def _optional_url(name: str, pk) -> str | None:
    """A URL another area provides, or None while that area is not built yet (the page still renders)."""
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None


# --- Board ---------------------------------------------------------------------------------------------------


def _board_state(request, params):
    """The pipeline shown and the filters applied, from the board's filter form (GET, or the move's POST)."""
    user = request.user
    pipelines = selectors.pipelines_of(actor=user)
    if not pipelines:
        pipelines = [pipeline_ensure_default(organization=user.organization, actor=user)]
    owners = (
        selectors.owner_choices(actor=user) if has_capability(user, Capability.VIEW_ALL_OPPORTUNITIES) else []
    )
    form = BoardFilterForm(params or None, pipelines=pipelines, owners=owners)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    chosen = {str(p.pk): p for p in pipelines}.get(data.get("pipeline") or "") or pipelines[0]
    filters = selectors.BoardFilters(
        owner=data.get("owner") or "", close_from=data.get("close_from"), close_to=data.get("close_to")
    )
    return form, pipelines, chosen, filters


def _more_query(filters: selectors.BoardFilters) -> str:
    """The list's filters matching the board's (for each column's "+ k more" link)."""
    query = QueryDict(mutable=True)
    if filters.owner:
        query["owner"] = filters.owner
    if filters.close_from:
        query["close_after"] = filters.close_from.isoformat()
    if filters.close_to:
        query["close_before"] = filters.close_to.isoformat()
    return query.urlencode()


def _board_context(request, columns, pipeline, filters) -> dict:
    return {
        "columns": columns,
        "pipeline": pipeline,
        "stages": [c.stage for c in columns],
        "summary": selectors.board_summary(columns),
        "today": services.organization_today(request.user.organization),
        "currency": request.user.organization.currency,
        "more_query": _more_query(filters),
        "can_edit": has_capability(request.user, Capability.EDIT_OPPORTUNITIES),
    }


@require_GET
@requires(Capability.VIEW_OPPORTUNITIES)
def board(request):
    form, pipelines, pipeline, filters = _board_state(request, request.GET)
    columns = selectors.board(actor=request.user, pipeline=pipeline, filters=filters)
    context = {
        **_board_context(request, columns, pipeline, filters),
        "title": _("Pipeline"),
        "filter_form": form,
        "pipelines": pipelines,
        "filtered": bool(filters.owner or filters.close_from or filters.close_to),
    }
    return render(request, "sales/opportunities/board.html", context)


# --- Moving, winning, losing, reopening ----------------------------------------------------------------------


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_move(request, pk):
    """Move a deal to another stage of its pipeline: the board's drag and drop and "Move to…" menu (htmx:
    the columns it left and entered come back redrawn, with their counts and totals; on a refusal the card
    goes back where it was) and the opportunity page's stage path (a redirect)."""
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    stages = selectors.stages_of(pipeline=deal.pipeline)
    form = MoveForm(request.POST, stages=stages)
    error, moved_to = "", None
    if form.is_valid():
        try:
            moved = services.opportunity_move(
                opportunity=deal,
                actor=request.user,
                stage=form.cleaned_data["stage"],
                lost_reason=form.cleaned_data["lost_reason"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            moved_to = moved.stage
    else:
        error = _errors(form)
    if request.htmx and request.POST.get("from") == "board":
        return _board_after_move(request, deal, moved_to, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request, _("%(name)s moved to %(stage)s.") % {"name": deal.name, "stage": moved_to.name}
        )
    return redirect(_back(request, reverse("sales:opportunity_detail", args=[deal.pk])))


def _board_after_move(request, deal, moved_to, error: str):
    """The board's answer to a move: the two columns concerned (out of band), the header figures and a
    status line. When the move was refused, the card's own column is redrawn with it in place."""
    _form, _pipelines, _chosen, filters = _board_state(request, request.POST)
    touched = {deal.stage_id} | ({moved_to.pk} if moved_to else set())
    columns = selectors.board(
        actor=request.user, pipeline=deal.pipeline, filters=filters, card_stage_ids=touched
    )
    context = {
        **_board_context(request, columns, deal.pipeline, filters),
        "redraw": [c for c in columns if c.stage.pk in touched],
        "error": error,
        "moved": deal if moved_to else None,
        "moved_to": moved_to,
    }
    return render(request, "sales/opportunities/_move_result.html", context)


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_win(request, pk):
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    try:
        services.opportunity_win(opportunity=deal, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("%(name)s is won. Well done!") % {"name": deal.name})
    return redirect("sales:opportunity_detail", pk=deal.pk)


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_lose(request, pk):
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    form = LoseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the deal was lost."))
        return redirect("sales:opportunity_detail", pk=deal.pk)
    try:
        services.opportunity_lose(opportunity=deal, actor=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("%(name)s is marked lost.") % {"name": deal.name})
    return redirect("sales:opportunity_detail", pk=deal.pk)


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_reopen(request, pk):
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    form = ReopenForm(request.POST, stages=selectors.stages_of(pipeline=deal.pipeline))
    if not form.is_valid():
        messages.error(request, _("Pick the stage to reopen the deal in."))
        return redirect("sales:opportunity_detail", pk=deal.pk)
    try:
        services.opportunity_move(opportunity=deal, actor=request.user, stage=form.cleaned_data["stage"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("%(name)s is open again.") % {"name": deal.name})
    return redirect("sales:opportunity_detail", pk=deal.pk)


# --- List and export -----------------------------------------------------------------------------------------


def _filtered(params, actor):
    filterset = OpportunityFilter(
        params or None,
        queryset=selectors.opportunity_list(actor=actor),
        actor=actor,
        stages_by_pipeline=selectors.stages_by_pipeline(actor=actor),
        owners=selectors.owner_choices(actor=actor),
    )
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    return filterset, queryset


@require_GET
@requires(Capability.VIEW_OPPORTUNITIES)
def opportunity_list(request):
    filterset, queryset = _filtered(request.GET, request.user)
    sort = request.GET.get("sort", "")
    if sort not in selectors.ORDERINGS:
        sort = selectors.DEFAULT_ORDERING
    page = keyset_page(
        queryset, ordering=selectors.ORDERINGS[sort], cursor=request.GET.get("cursor"), per_page=PER_PAGE
    )
    table = OpportunityTable(page.items, request=request)
    RequestConfig(request, paginate=False).configure(table)
    table.order_by = sort
    count, capped = selectors.capped_count(queryset)
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": _("Opportunities"),
        "filter": filterset,
        "table": table,
        "page": page,
        "count": count,
        "capped": capped,
        "querystring": query.urlencode(),
        "today": services.organization_today(request.user.organization),
        "can_export": has_capability(request.user, Capability.EXPORT_OPPORTUNITIES),
        "can_create": has_capability(request.user, Capability.EDIT_OPPORTUNITIES),
    }
    return render(request, "sales/opportunities/list.html", context)


class _Echo:
    """A file-like object whose write() returns the line, so csv.writer can feed a generator."""

    def write(self, value):
        return value


@require_GET
@requires(Capability.EXPORT_OPPORTUNITIES)
def opportunity_export(request):
    """The filtered list as CSV, streamed from a server-side cursor, every cell spreadsheet-safe. The stream
    runs after the request's transaction has ended, so it opens its own tenant context while it runs."""
    user = request.user
    params = request.GET.copy()
    record_list_export(request=request, list_name="Opportunities", queryset=_filtered(params, user)[1])

    def lines():
        writer = csv.writer(_Echo())
        with tenant_context(user.organization_id, user=user):
            _filterset, queryset = _filtered(params, user)
            for row in selectors.export_rows(queryset):
                yield writer.writerow([spreadsheet_safe(value) for value in row])

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="opportunities-{stamp}.csv"'
    return response


# --- Create and edit -----------------------------------------------------------------------------------------


def _form_context(request, form, *, title, opportunity=None, customer=None) -> dict:
    return {
        "title": title,
        "form": form,
        "opportunity": opportunity,
        "customer": customer,
        "stage_defaults": form.stage_defaults(),
        "next": _back(request, ""),
        "creating": opportunity is None,
    }


@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_create(request):
    user = request.user
    params = request.POST if request.method == "POST" else request.GET
    customer = (
        selectors.customer_get(actor=user, pk=params.get("customer"))
        if _is_uuid(params.get("customer"))
        else None
    )
    stages_by_pipeline = selectors.stages_by_pipeline(actor=user)
    if not stages_by_pipeline:
        pipeline_ensure_default(organization=user.organization, actor=user)
        stages_by_pipeline = selectors.stages_by_pipeline(actor=user)
    initial = {
        "assigned_to": str(user.pk),
        "currency": user.organization.currency,
        "stage": request.GET.get("stage") or str(stages_by_pipeline[0][1][0].pk),
        "expected_close_date": services.organization_today(user.organization) + datetime.timedelta(days=30),
        "customer": customer.pk if customer else None,
        "name": request.GET.get("name", ""),
    }
    form = OpportunityForm(
        request.POST or None,
        initial=initial,
        stages_by_pipeline=stages_by_pipeline,
        owners=selectors.owner_choices(actor=user),
        customer=customer,
        campaigns=campaign_options(organization_id=user.organization_id),
    )
    if request.method == "POST" and form.is_valid():
        if customer is None:
            form.add_error("customer", _("Pick a customer."))
        else:
            try:
                deal = services.opportunity_create(
                    organization=user.organization, actor=user, customer=customer, **form.changes()
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(request, _("%(name)s is added.") % {"name": deal.name})
                return redirect(_back(request, reverse("sales:opportunity_detail", args=[deal.pk])))
    return render(
        request,
        "sales/opportunities/form.html",
        _form_context(request, form, title=_("New opportunity"), customer=customer),
    )


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_edit(request, pk):
    user = request.user
    deal = selectors.opportunity_get(actor=user, pk=pk)
    customer = deal.customer
    if request.method == "POST" and _is_uuid(request.POST.get("customer")):
        customer = selectors.customer_get(actor=user, pk=request.POST["customer"])
    form = OpportunityForm(
        request.POST or None,
        stages_by_pipeline=selectors.stages_by_pipeline(actor=user),
        owners=selectors.owner_choices(actor=user),
        customer=customer,
        opportunity=deal,
        campaigns=campaign_options(organization_id=user.organization_id, include_id=deal.source_campaign_id),
    )
    if request.method == "POST" and form.is_valid():
        if customer is None:
            form.add_error("customer", _("Pick a customer."))
        else:
            try:
                services.opportunity_update(opportunity=deal, actor=user, customer=customer, **form.changes())
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(request, _("%(name)s is saved.") % {"name": form.cleaned_data["name"]})
                return redirect(_back(request, reverse("sales:opportunity_detail", args=[deal.pk])))
    return render(
        request,
        "sales/opportunities/form.html",
        _form_context(
            request, form, title=_("Edit %(name)s") % {"name": deal.name}, opportunity=deal, customer=customer
        ),
    )


@require_GET
@requires(Capability.EDIT_OPPORTUNITIES)
def customer_options(request):
    """The deal form's customer picker (htmx): the customers matching what was typed."""
    options = selectors.customer_options(actor=request.user, query=request.GET.get("customer_query", ""))
    return render(request, "sales/opportunities/_customer_options.html", {"options": options})


# --- Detail --------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_OPPORTUNITIES)
def opportunity_detail(request, pk):
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    stages = selectors.stages_of(pipeline=deal.pipeline)
    today = services.organization_today(request.user.organization)
    context = {
        "title": deal.name,
        "opp": deal,
        "stages": stages,
        "open_stages": [s for s in stages if s.outcome == Stage.Outcome.OPEN],
        "lost_stage": next((s for s in stages if s.outcome == Stage.Outcome.LOST), None),
        "history": selectors.opportunity_history(opportunity=deal),
        "reopen_stage": None if deal.is_open else selectors.last_open_stage(opportunity=deal, stages=stages),
        "today": today,
        "overdue": deal.is_open and deal.expected_close_date < today,
        "days_left": (deal.expected_close_date - today).days,
        "overdue_days": (today - deal.expected_close_date).days,
        "can_edit": has_capability(request.user, Capability.EDIT_OPPORTUNITIES),
        "activities_url": _optional_url("sales:opportunity_activities", deal.pk),
        "quotes_url": _optional_url("sales:opportunity_quotes", deal.pk),
    }
    return render(request, "sales/opportunities/detail.html", context)
