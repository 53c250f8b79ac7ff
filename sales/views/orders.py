"""Orders: the list (keyset pages, status filter, search by number or external reference) and one order."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.permissions import Capability, has_capability, requires
from sales.forms_quotes import OrderListForm
from sales.selectors import orders as selectors
from sales.selectors import visible_opportunities

PER_PAGE = 50


@require_GET
@requires(Capability.VIEW_ORDERS)
def order_list(request):
    filters = OrderListForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    page = selectors.order_page(
        actor=request.user,
        status=data.get("status", ""),
        query=data.get("q", ""),
        customer_id=data.get("customer"),
        cursor=request.GET.get("cursor"),
        per_page=PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": _("Orders"),
        "page": page,
        "filters": filters,
        "filtering": bool(data.get("status") or data.get("q") or data.get("customer")),
        "querystring": query.urlencode(),
    }
    return render(request, "sales/orders/list.html", context)


@require_GET
@requires(Capability.VIEW_ORDERS)
def order_detail(request, pk):
    order = selectors.order_get(actor=request.user, pk=pk)
    context = {
        "title": order.order_number,
        "order": order,
        "lines": selectors.order_lines(order=order),
        # The deal and its quote are shown only to whoever may see the deal ("own only" mode hides it).
        "deal_visible": order.opportunity_id is not None
        and visible_opportunities(actor=request.user).filter(pk=order.opportunity_id).exists(),
        "can_view_quote": order.quote_id is not None and has_capability(request.user, Capability.VIEW_QUOTES),
    }
    return render(request, "sales/orders/detail.html", context)
