"""Customer list (filters, keyset pages, bulk actions, CSV export), create/edit, the 360 page and its JSON,
and logging interactions from the 360 page (htmx)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from compliance.access_log import record_access, record_list_export
from compliance.models import AccessAction
from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from crm.tenancy import tenant_context
from crm.views import _apply_errors, _back
from customers import exporting, json360, selectors
from customers.filters import CustomerFilter
from customers.forms import BulkActionForm, CustomerForm, InteractionForm, TimelineFilterForm
from customers.services import customers as services
from customers.tables import CustomerTable
from marketing.selectors.campaigns import campaign_options

PER_PAGE = 50
TIMELINE_PAGE = 20


def _filtered(params, actor):
    filterset = CustomerFilter(params or None, queryset=selectors.customers_of(actor=actor), actor=actor)
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    return filterset, queryset.select_related("assigned_to")


def _ordering(request, searching: bool) -> tuple[str, tuple[str, ...]]:
    sort = request.GET.get("sort", "")
    if sort in selectors.ORDERINGS:
        return sort, selectors.ORDERINGS[sort]
    if searching:
        return "", ("-similarity", "-id")
    return selectors.DEFAULT_ORDERING, selectors.ORDERINGS[selectors.DEFAULT_ORDERING]


@requires(Capability.VIEW_CUSTOMERS)
def customer_list(request):
    filterset, queryset = _filtered(request.GET, request.user)
    searching = bool(
        filterset.is_bound and filterset.form.is_valid() and filterset.form.cleaned_data.get("q")
    )
    sort, ordering = _ordering(request, searching)
    page = keyset_page(queryset, ordering=ordering, cursor=request.GET.get("cursor"), per_page=PER_PAGE)
    table = CustomerTable(page.items, request=request)
    if sort:
        RequestConfig(request, paginate=False).configure(table)
        table.order_by = sort
    count, capped = selectors.capped_count(queryset)
    query = request.GET.copy()
    query.pop("cursor", None)
    can_bulk = has_capability(request.user, Capability.BULK_EDIT_CUSTOMERS)
    context = {
        "title": _("Customers"),
        "filter": filterset,
        "table": table,
        "page": page,
        "count": count,
        "capped": capped,
        "querystring": query.urlencode(),
        "can_bulk": can_bulk,
        "bulk_form": BulkActionForm(
            owners=selectors.owner_choices(actor=request.user),
            segments=selectors.static_segments(actor=request.user),
        )
        if can_bulk
        else None,
        "can_export": has_capability(request.user, Capability.EXPORT_CUSTOMERS),
        "can_create": has_capability(request.user, Capability.EDIT_CUSTOMERS),
    }
    return render(request, "customers/list/list.html", context)


@require_POST
@requires(Capability.BULK_EDIT_CUSTOMERS)
def customer_bulk(request):
    ids = request.POST.getlist("ids")
    owners = selectors.owner_choices(actor=request.user)
    segments = selectors.static_segments(actor=request.user)
    valid_ids = list(
        selectors.customers_of(actor=request.user)
        .filter(pk__in=selectors.valid_ids(ids))
        .values_list("pk", flat=True)
    )
    form = BulkActionForm(request.POST, customer_ids=valid_ids, owners=owners, segments=segments)
    back = _back(request, reverse("customers:list"))
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    data, actor = form.cleaned_data, request.user
    try:
        if data["action"] == "assign":
            owner = {str(u.pk): u for u in owners}.get(data["owner"])
            n = services.customers_bulk_assign(actor=actor, customer_ids=data["ids"], owner=owner)
        elif data["action"] in ("tag", "untag"):
            n = services.customers_bulk_tag(
                actor=actor, customer_ids=data["ids"], tag=data["tag"], remove=data["action"] == "untag"
            )
        elif data["action"] == "stage":
            n = services.customers_bulk_stage(
                actor=actor, customer_ids=data["ids"], stage=data["stage"], reason=_("Bulk change")
            )
        else:
            from customers.services.segments import segment_add_members

            segment = next(s for s in segments if str(s.pk) == data["segment"])
            n = segment_add_members(segment=segment, customer_ids=data["ids"], actor=actor)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    messages.success(request, _("%(count)d customers updated.") % {"count": n})
    return redirect(back)


@require_GET
@requires(Capability.EXPORT_CUSTOMERS)
def customer_export(request):
    """The filtered list as CSV, streamed: rows leave as they are read (a server-side cursor), so a large
    export never sits in memory. The stream runs after the request's transaction has ended, so it opens
    its own tenant context for as long as it runs."""
    user = request.user
    params = request.GET.copy()
    record_list_export(request=request, list_name="Customers", queryset=_filtered(params, user)[1])

    def rows():
        with tenant_context(user.organization_id, user=user):
            _, queryset = _filtered(params, user)
            yield from exporting.csv_lines(queryset)

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
    return response


@requires(Capability.EDIT_CUSTOMERS)
def customer_create(request):
    owners = selectors.owner_choices(actor=request.user)
    form = CustomerForm(request.POST or None, owners=owners, initial={"assigned_to": str(request.user.pk)})
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(
                organization=request.user.organization,
                actor=request.user,
                reason=form.cleaned_data["stage_reason"],
                **form.changes(),
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is added.") % {"name": customer.display_name})
            return redirect("customers:detail", pk=customer.pk)
    return render(
        request, "customers/form.html", {"form": form, "title": _("New customer"), "creating": True}
    )


@requires(Capability.EDIT_CUSTOMERS)
def customer_edit(request, pk):
    customer = selectors.customer_get(actor=request.user, pk=pk)
    owners = selectors.owner_choices(actor=request.user)
    form = CustomerForm(request.POST or None, instance=customer, owners=owners)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update(
                customer=customer,
                actor=request.user,
                reason=form.cleaned_data["stage_reason"],
                **form.changes(),
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": customer.display_name})
            return redirect("customers:detail", pk=customer.pk)
    context = {
        "form": form,
        "customer": customer,
        "title": _("Edit %(name)s") % {"name": customer.display_name},
    }
    return render(request, "customers/form.html", context)


def _timeline_context(request, customer):
    kind_form = TimelineFilterForm(request.GET or None)
    kind = kind_form.cleaned_data["kind"] if kind_form.is_valid() else ""
    page = keyset_page(
        selectors.timeline(customer=customer, kind=kind),
        ordering=("-interaction_date", "-id"),
        cursor=request.GET.get("cursor"),
        per_page=TIMELINE_PAGE,
    )
    return {"customer": customer, "timeline": page, "kind_form": kind_form, "kind": kind}


@requires(Capability.VIEW_CUSTOMERS)
def customer_detail(request, pk):
    customer = selectors.customer_get(actor=request.user, pk=pk)
    record_access(
        request_or_none=request, user=request.user, action=AccessAction.VIEW_CUSTOMER, customer=customer
    )
    context = {
        "title": customer.display_name,
        "customer": customer,
        "interaction_form": _interaction_form(request),
        "lifecycle": selectors.lifecycle_history(customer=customer),
        "memberships": selectors.segments_of(customer=customer),
        "score": json360.score_for(customer=customer),
        "panels": selectors.panels_for(customer=customer, actor=request.user),
        "can_edit": has_capability(request.user, Capability.EDIT_CUSTOMERS),
        **_timeline_context(request, customer),
    }
    return render(request, "customers/detail/detail.html", context)


@require_GET
@requires(Capability.VIEW_CUSTOMERS)
def customer_timeline(request, pk):
    """The timeline partial: filtered by type, and further pages ("older")."""
    customer = selectors.customer_get(actor=request.user, pk=pk)
    return render(request, "customers/detail/_timeline.html", _timeline_context(request, customer))


def _interaction_form(request, data=None) -> InteractionForm:
    """The 360 page's "log an interaction" form, offering the organization's campaigns to credit."""
    return InteractionForm(data, campaigns=campaign_options(organization_id=request.user.organization_id))


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def interaction_create(request, pk):
    """Log a call, meeting or note from the 360 page in one step; htmx gets the fresh timeline back."""
    customer = selectors.customer_get(actor=request.user, pk=pk)
    form = _interaction_form(request, request.POST)
    if form.is_valid():
        services.interaction_log(
            customer=customer,
            actor=request.user,
            **{k: v for k, v in form.cleaned_data.items() if v not in (None, "") or k == "interaction_type"},
        )
        if not request.htmx:
            messages.success(request, _("Logged."))
            return redirect("customers:detail", pk=customer.pk)
        context = {
            **_timeline_context(request, customer),
            "interaction_form": _interaction_form(request),
            "logged": True,
            "can_edit": True,
            "score": json360.score_for(customer=customer),
        }
        response = render(request, "customers/detail/_log_and_timeline.html", context)
        response["HX-Trigger"] = "customer-changed"
        return response
    if not request.htmx:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("customers:detail", pk=customer.pk)
    context = {**_timeline_context(request, customer), "interaction_form": form, "can_edit": True}
    # 200, not 422: htmx swaps only successful responses, and the form with its errors must be shown.
    return render(request, "customers/detail/_log_and_timeline.html", context)


@require_GET
@requires(Capability.VIEW_CUSTOMERS)
def customer_360_json(request, pk):
    customer = selectors.customer_get(actor=request.user, pk=pk)
    record_access(
        request_or_none=request,
        user=request.user,
        action=AccessAction.VIEW_CUSTOMER,
        customer=customer,
        description="360 JSON",
    )
    return JsonResponse(json360.customer_360(customer=customer, actor=request.user))
