"""The agent workspace: the ticket queues (views, filters, SLA order, bulk actions), a new ticket, the ticket
page (thread, reply or note in one htmx step, status / priority / assignee, edit, customer context, history)
and attachment downloads."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors, _back
from customers.models import Customer
from customers.services.customers import customer_create
from support import routing
from support.forms import (
    AssignForm,
    BulkForm,
    PriorityForm,
    ReplyForm,
    StatusForm,
    TicketCreateForm,
    TicketEditForm,
)
from support.models import Priority, Status, TicketMessage
from support.selectors import tickets as selectors
from support.services import tickets as services
from support.tables import TicketTable

PER_PAGE = 50
MAIN_FILTERS = ("status", "priority", "assignee", "category", "channel")
MORE_FILTERS = ("customer", "tag", "created_after", "created_before")


def _errors(error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, PermissionDenied):
        return _("You may not do that.")
    return " ".join(error.messages)


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- Queues --------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_TICKETS)
def queue_page(request):
    actor = request.user
    views = selectors.queue_views(actor=actor)
    view = selectors.queue_view(actor=actor, key=request.GET.get("view"))
    agents = selectors.assignable_agents(actor=actor)
    params = request.GET.copy()
    for key in ("view", "cursor", "sort"):
        params.pop(key, None)
    filterset, queryset = selectors.queue(actor=actor, view=view, params=params, agents=agents)
    sort, ordering = selectors.ordering_for(request.GET.get("sort"))
    page = keyset_page(queryset, ordering=ordering, cursor=request.GET.get("cursor"), per_page=PER_PAGE)
    now = timezone.now()
    tickets = selectors.with_sla_facts(page.items, now)
    can_work = has_capability(actor, Capability.WORK_TICKETS)
    can_manage = has_capability(actor, Capability.MANAGE_TICKETS)
    table = TicketTable(tickets, exclude=() if can_work else ("select",), request=request)
    filtered = any(value for key, value in params.items())
    count, capped = selectors.capped_count(queryset) if filtered else (None, False)
    counts = selectors.view_counts(actor=actor, views=views)
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": view.label,
        "views": [{"view": v, "count": counts[v.key][0], "capped": counts[v.key][1]} for v in views],
        "view": view,
        "view_count": counts[view.key],
        "filter": filterset,
        "filtered": filtered,
        "count": count,
        "capped": capped,
        "table": table,
        "page": page,
        "tickets": tickets,
        "sort": sort,
        "sort_label": selectors.ORDERING_LABELS[sort],
        "sorts": selectors.ORDERING_LABELS,
        "main_fields": [filterset.form[name] for name in MAIN_FILTERS],
        "more_fields": [filterset.form[name] for name in MORE_FILTERS],
        "more_open": any(params.get(name) for name in MORE_FILTERS),
        "querystring": query.urlencode(),
        "base_query": _base_query(request, view),
        "can_work": can_work,
        "can_manage": can_manage,
        "bulk_form": BulkForm(agents=agents if can_manage else (), actor=actor) if can_work else None,
        "statuses": Status.choices,
        "now": now,
    }
    return render(request, "support/tickets/queue.html", context)


def _base_query(request, view) -> str:
    """The query string of the view and its filters, without the sort and the cursor."""
    query = request.GET.copy()
    for key in ("cursor", "sort"):
        query.pop(key, None)
    query["view"] = view.key
    return query.urlencode()


@require_POST
@requires(Capability.WORK_TICKETS)
def queue_bulk(request):
    """Assign, set the status or the priority of the chosen tickets, each through its service (so every
    change leaves its events and recomputes the SLA); a ticket that cannot take the change is skipped and
    named, the others go through. Assigning to someone else needs MANAGE_TICKETS."""
    actor = request.user
    back = _back(request, reverse("support:queue"))
    can_manage = has_capability(actor, Capability.MANAGE_TICKETS)
    agents = selectors.assignable_agents(actor=actor) if can_manage else ()
    form = BulkForm(request.POST, agents=agents, actor=actor)
    tickets = selectors.bulk_tickets(actor=actor, ids=request.POST.getlist("ids"))
    if not tickets:
        messages.error(request, _("Select one or more tickets first."))
        return redirect(back)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect(back)
    data = form.cleaned_data
    done, skipped = 0, []
    for ticket in tickets:
        try:
            with transaction.atomic():
                if data["action"] == "assign":
                    routing.ticket_assign(
                        ticket=ticket, agent=data["agent"], actor=actor, force=can_manage and data["force"]
                    )
                elif data["action"] == "status":
                    services.ticket_set_status(ticket=ticket, actor=actor, status=data["status"])
                else:
                    services.ticket_set_priority(ticket=ticket, actor=actor, priority=data["priority"])
        except PermissionDenied:
            reason = (
                _("only unassigned tickets can be taken") if data["action"] == "assign" else _("not allowed")
            )
            skipped.append(f"{ticket.ticket_number}: {reason}")
        except ValidationError as error:
            skipped.append(f"{ticket.ticket_number}: {_errors(error)}")
        else:
            done += 1
    if done:
        messages.success(
            request,
            ngettext("%(count)d ticket updated.", "%(count)d tickets updated.", done) % {"count": done},
        )
    if skipped:
        messages.warning(
            request,
            ngettext(
                "%(count)d ticket skipped: %(list)s", "%(count)d tickets skipped: %(list)s", len(skipped)
            )
            % {"count": len(skipped), "list": "; ".join(skipped)},
        )
    return redirect(back)


# --- New ticket ----------------------------------------------------------------------------------------------


def _customer_by_email(actor, email: str) -> Customer | None:
    return Customer.objects.filter(organization_id=actor.organization_id, email__iexact=email).first()


@require_http_methods(["GET", "POST"])
@requires(Capability.WORK_TICKETS)
def ticket_create(request):
    """Open a ticket for a customer found by email, or created with it (phone calls, chats, walk-ins)."""
    actor = request.user
    initial = {}
    preset = request.GET.get("customer")
    if preset:
        customer = selectors.customer_for_form(actor=actor, pk=preset)
        if customer is not None:
            initial = {"email": customer.email}
    form = TicketCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                customer = _customer_by_email(actor, data["email"]) or customer_create(
                    organization=actor.organization,
                    actor=actor,
                    reason=_("Opened a support ticket"),
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    company_name=data["company_name"],
                )
                ticket = services.ticket_create(
                    organization=actor.organization,
                    actor=actor,
                    customer=customer,
                    subject=data["subject"],
                    description=data["description"],
                    channel=data["channel"],
                    type=data["type"],
                    category=data["category"],
                    requested_priority=data["requested_priority"],
                    tags=data["tags"],
                )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(number)s is open.") % {"number": ticket.ticket_number})
            return redirect("support:ticket_detail", pk=ticket.pk)
    match = _customer_by_email(actor, form["email"].value() or "") if form["email"].value() else None
    context = {"title": _("New ticket"), "form": form, "match": match, "email": form["email"].value() or ""}
    return render(request, "support/tickets/create.html", context)


@require_GET
@requires(Capability.WORK_TICKETS)
def customer_lookup(request):
    """htmx: whether the email typed on the new-ticket form is a known customer."""
    email = (request.GET.get("email") or "").strip()
    match = _customer_by_email(request.user, email) if "@" in email else None
    return render(request, "support/tickets/_customer_match.html", {"match": match, "email": email})


# --- The ticket page -----------------------------------------------------------------------------------------


def _detail_context(request, ticket, *, reply_form=None, sent=None) -> dict:
    actor = request.user
    now = timezone.now()
    ticket.sla = selectors.sla_facts(ticket, now)
    can_work = has_capability(actor, Capability.WORK_TICKETS)
    can_manage = has_capability(actor, Capability.MANAGE_TICKETS)
    kb_available, articles = (
        selectors.suggested_articles(ticket=ticket, org_slug=actor.organization.slug)
        if can_work
        else (False, [])
    )
    others = selectors.with_sla_facts(selectors.other_tickets(ticket=ticket), now)
    return {
        "title": f"{ticket.ticket_number} {ticket.subject}",
        "ticket": ticket,
        "customer": ticket.customer,
        "messages_": selectors.thread(ticket=ticket),
        "history": selectors.history(ticket=ticket),
        "other_tickets": others,
        "canned": selectors.canned_for_ticket(actor=actor, ticket=ticket) if can_work else [],
        "agents": selectors.assignable_agents(actor=actor) if can_manage else [],
        "kb_available": kb_available,
        "articles": articles,
        "reply_form": reply_form or ReplyForm(),
        "sent": sent,
        "can_work": can_work,
        "can_manage": can_manage,
        "can_take": can_work and ticket.is_active and ticket.assigned_to_id is None,
        "statuses": Status.choices,
        "priorities": Priority.choices,
        "now": now,
    }


@require_GET
@requires(Capability.VIEW_TICKETS)
def ticket_detail(request, pk):
    ticket = selectors.ticket_get(actor=request.user, pk=pk)
    return render(request, "support/tickets/detail.html", _detail_context(request, ticket))


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_reply(request, pk):
    """Send a public reply or add an internal note, with attachments, and optionally set the next status, in
    one step. htmx gets the conversation back (and the header, properties and history out of band)."""
    actor = request.user
    ticket = selectors.ticket_get(actor=actor, pk=pk)
    form = ReplyForm(request.POST, request.FILES)
    sent = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                if data["kind"] == TicketMessage.Kind.NOTE:
                    sent = services.ticket_note(
                        ticket=ticket, actor=actor, body=data["body"], attachments=data["attachments"]
                    )
                    if data["set_status"]:
                        services.ticket_set_status(ticket=ticket, actor=actor, status=data["set_status"])
                else:
                    sent = services.ticket_reply(
                        ticket=ticket,
                        actor=actor,
                        body=data["body"],
                        attachments=data["attachments"],
                        set_status=data["set_status"],
                    )
        except ValidationError as error:
            sent = None
            _apply_errors(form, error)
    if not request.htmx:
        if sent is not None:
            messages.success(request, _("Note added.") if sent.kind == "note" else _("Reply sent."))
        else:
            messages.error(request, _form_errors(form))
        return redirect("support:ticket_detail", pk=ticket.pk)
    ticket = selectors.ticket_get(actor=actor, pk=pk)
    context = _detail_context(request, ticket, reply_form=None if sent else form, sent=sent)
    return render(request, "support/tickets/_reply_result.html", context)


def _ticket_action(request, pk, form_class, apply, success):
    """The one-field actions of the ticket page: validate, call the service, go back to the ticket."""
    ticket = selectors.ticket_get(actor=request.user, pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        try:
            with transaction.atomic():
                apply(ticket, form.cleaned_data)
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, _errors(error))
        else:
            messages.success(request, success)
    return redirect(_back(request, reverse("support:ticket_detail", args=[ticket.pk])))


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_status(request, pk):
    def apply(ticket, data):
        services.ticket_set_status(ticket=ticket, actor=request.user, status=data["status"])

    return _ticket_action(request, pk, StatusForm, apply, _("Status changed."))


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_priority(request, pk):
    def apply(ticket, data):
        services.ticket_set_priority(ticket=ticket, actor=request.user, priority=data["priority"])

    return _ticket_action(request, pk, PriorityForm, apply, _("Priority changed."))


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_assign(request, pk):
    """Take the ticket ("me"), or assign it to someone (MANAGE_TICKETS; routing checks capacity unless
    forced)."""
    actor = request.user
    can_manage = has_capability(actor, Capability.MANAGE_TICKETS)
    agents = selectors.assignable_agents(actor=actor) if can_manage else ()

    def form_class(data):
        return AssignForm(data, agents=agents, actor=actor)

    def apply(ticket, data):
        routing.ticket_assign(
            ticket=ticket, agent=data["agent"], actor=actor, force=can_manage and data["force"]
        )

    return _ticket_action(request, pk, form_class, apply, _("Assigned."))


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_unassign(request, pk):
    """Send the ticket back to the team queue (its assignee, or MANAGE_TICKETS)."""
    ticket = selectors.ticket_get(actor=request.user, pk=pk)
    try:
        with transaction.atomic():
            routing.ticket_release(ticket=ticket, actor=request.user, unassign=True)
    except PermissionDenied as error:
        messages.error(request, _errors(error))
    else:
        messages.success(request, _("Back in the team queue."))
    return redirect("support:ticket_detail", pk=ticket.pk)


@require_http_methods(["GET", "POST"])
@requires(Capability.WORK_TICKETS)
def ticket_edit(request, pk):
    ticket = selectors.ticket_get(actor=request.user, pk=pk)
    initial = {
        "subject": ticket.subject,
        "description": ticket.description,
        "type": ticket.type,
        "category": ticket.category,
        "tags": ", ".join(ticket.tags),
    }
    form = TicketEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.ticket_update(ticket=ticket, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("support:ticket_detail", pk=ticket.pk)
    context = {
        "title": _("Edit %(number)s") % {"number": ticket.ticket_number},
        "form": form,
        "ticket": ticket,
    }
    return render(request, "support/tickets/edit.html", context)


@require_GET
@requires(Capability.VIEW_TICKETS)
def attachment_download(request, pk):
    """An attachment, only as a download and only to someone who may see its ticket: never rendered in the
    CRM's origin (Content-Disposition: attachment, nosniff, a sandboxing CSP)."""
    attachment = selectors.attachment_get(actor=request.user, pk=pk)
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.filename, content_type=attachment.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
