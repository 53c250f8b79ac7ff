"""The access log review page (VIEW_ACCESS_LOG): who viewed or exported whose personal data, filtered by user,
action, customer and dates, newest first in keyset pages. A fixed number of queries whatever the page holds:
the organization's users (the filter's choices, which also label the rows), the page, and its customers."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from compliance.access_log import AccessLogFilter, access_log_list, customers_by_id
from crm import selectors as crm_selectors
from crm.pagination import keyset_page
from crm.permissions import Capability, requires

PER_PAGE = 50


@require_GET
@requires(Capability.VIEW_ACCESS_LOG)
def access_log(request):
    actor = request.user
    people = list(crm_selectors.user_list(actor=actor).only("id", "first_name", "last_name", "email"))
    filterset = AccessLogFilter(
        request.GET or None,
        queryset=access_log_list(actor=actor),
        users=people,
        organization_id=actor.organization_id,
    )
    page = keyset_page(
        filterset.qs, ordering=("-occurred_at", "-id"), cursor=request.GET.get("cursor"), per_page=PER_PAGE
    )
    users = {u.pk: u for u in people}
    customers = customers_by_id(
        organization_id=actor.organization_id, ids=[e.customer_id for e in page.items]
    )
    rows = [
        {"entry": e, "user": users.get(e.user_id), "customer": customers.get(e.customer_id)}
        for e in page.items
    ]
    query = request.GET.copy()
    query.pop("cursor", None)
    filtered = any(value for key, value in request.GET.items() if key != "cursor")
    context = {
        "title": _("Access log"),
        "filter": filterset,
        "page": page,
        "rows": rows,
        "filtered": filtered,
        "querystring": query.urlencode(),
    }
    template = (
        "compliance/access_log/_rows.html"
        if request.htmx and request.htmx.target == "access-log-results"
        else "compliance/access_log/list.html"
    )
    return render(request, template, context)
