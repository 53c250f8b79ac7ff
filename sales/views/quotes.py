"""Quotes: a deal's quotes section, creation from a deal, the quote page with its line editor (htmx), the
approval flow's actions, versions (revise, compare), the printable page, the list and the approval queue.

Every quote is reached through `selectors.quotes.quote_get`, which starts from the deals the user may see:
another organization's quote, or one of a deal hidden in "own only" mode, is a 404 on every URL here.
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from sales.forms_quotes import CommentForm, QuoteForm, QuoteLineForm, QuoteListForm
from sales.models import Opportunity, Quote, QuoteItem
from sales.selectors import products as product_selectors
from sales.selectors import quotes as selectors
from sales.services import quotes as services

PER_PAGE = 50
Status = Quote.Status


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _deal_url(deal: Opportunity) -> str | None:
    """The opportunity page (the opportunities area's URL), if it is there."""
    try:
        return reverse("sales:opportunity_detail", args=[deal.pk])
    except NoReverseMatch:
        return None


# --- The deal's quotes section and creation ----------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_QUOTES)
def opportunity_quotes(request, pk):
    """The quotes section of the opportunity page (a card body loaded with htmx): the current version of
    each of the deal's quotes, with its status and total, and "New quote"."""
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    context = {
        "opportunity": deal,
        "quotes": selectors.opportunity_quotes(actor=request.user, opportunity=deal),
        "can_create": has_capability(request.user, Capability.EDIT_QUOTES)
        and deal.status == Opportunity.Status.OPEN,
    }
    return render(request, "sales/quotes/_opportunity_quotes.html", context)


@requires(Capability.EDIT_QUOTES)
def quote_create(request, pk):
    deal = selectors.opportunity_get(actor=request.user, pk=pk)
    # The deal's "New quote" button posts no fields: a quote with the defaults, straight to its editor.
    form = QuoteForm(request.POST if request.method == "POST" else None, initial={"title": deal.name})
    if request.method == "POST" and form.is_valid():
        try:
            quote = services.quote_create(opportunity=deal, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        except PermissionDenied:
            raise Http404 from None
        else:
            messages.success(
                request, _("Quote %(number)s is started: add its lines.") % {"number": quote.quote_number}
            )
            return redirect("sales:quote_detail", pk=quote.pk)
    context = {
        "form": form,
        "opportunity": deal,
        "deal_url": _deal_url(deal),
        "title": _("New quote for %(deal)s") % {"deal": deal.name},
    }
    return render(request, "sales/quotes/create.html", context)


# --- The quote page and its line editor --------------------------------------------------------------------


def _line_forms(quote: Quote, items: list[QuoteItem], failed: dict | None = None) -> list[tuple]:
    rows = []
    for item in items:
        form = (failed or {}).get(str(item.pk))
        if form is None:
            form = QuoteLineForm(
                prefix=f"line-{item.pk}",
                with_product=False,
                initial={
                    "description": item.description,
                    "quantity": item.quantity.normalize(),
                    "unit_price": item.unit_price,
                    "discount_pct": item.discount_pct.normalize(),
                    "tax_rate": item.tax_rate.normalize(),
                },
            )
        rows.append((item, form))
    return rows


def _lines_context(request, quote: Quote, *, add_form=None, failed=None, error: str = "") -> dict:
    items = selectors.quote_items(quote=quote)
    editable = quote.is_editable and has_capability(request.user, Capability.EDIT_QUOTES)
    context = {"quote": quote, "items": items, "editable": editable, "line_error": error}
    if editable:
        products = product_selectors.picker_products(actor=request.user, currency=quote.currency)
        context["rows"] = _line_forms(quote, items, failed)
        context["add_form"] = add_form or QuoteLineForm(prefix="new", products=products)
        context["add_form"].pick_with(reverse("sales:quote_line_form", args=[quote.pk]))
    return context


def _decision_flags(request, quote: Quote) -> dict:
    user = request.user
    can_edit = has_capability(user, Capability.EDIT_QUOTES) and quote.is_current
    can_decide = (
        has_capability(user, Capability.APPROVE_QUOTES)
        and quote.is_current
        and quote.status == Status.PENDING_APPROVAL
    )
    own = user.pk in (quote.created_by_id, quote.submitted_by_id)
    return {
        "can_submit": can_edit and quote.is_editable,
        "can_decide": can_decide and not own,
        "own_quote_pending": can_decide and own,
        "can_send": can_edit and quote.status == Status.APPROVED,
        "can_close": can_edit and quote.status == Status.SENT,
        "can_revise": can_edit and quote.status in services.REVISABLE,
    }


@require_GET
@requires(Capability.VIEW_QUOTES)
def quote_detail(request, pk):
    quote = selectors.quote_get(actor=request.user, pk=pk)
    versions = selectors.quote_versions(quote=quote)
    context = {
        "title": f"{quote.quote_number} · {quote.title}",
        "quote": quote,
        "opportunity": quote.opportunity,
        "deal_url": _deal_url(quote.opportunity),
        "customer": quote.opportunity.customer,
        "events": selectors.quote_events(quote=quote),
        "versions": versions,
        "current_version": next((v for v in versions if v.is_current), None),
        "order": quote.order if quote.status == Status.ACCEPTED and hasattr(quote, "order") else None,
        "header_form": QuoteForm(instance=quote) if quote.is_editable else None,
        "comment_form": CommentForm(),
        **_decision_flags(request, quote),
        **_lines_context(request, quote),
    }
    return render(request, "sales/quotes/detail.html", context)


def _lines_response(request, quote: Quote, **extra):
    if request.htmx:
        quote.refresh_from_db(
            fields=["subtotal", "discount_total", "tax_total", "total", "max_discount_pct", "status"]
        )
        # The key facts above the lines (total, largest discount) follow out of band.
        context = {**_lines_context(request, quote, **extra), "oob": True}
        return render(request, "sales/quotes/_lines.html", context)
    if extra.get("error"):
        messages.error(request, extra["error"])
    return redirect("sales:quote_detail", pk=quote.pk)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_edit(request, pk):
    """Save the header (title, valid until, terms) of an editable quote."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    form = QuoteForm(request.POST)
    if form.is_valid():
        try:
            services.quote_update(quote=quote, actor=request.user, **form.changes())
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, _("Saved."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("sales:quote_detail", pk=quote.pk)


@require_GET
@requires(Capability.EDIT_QUOTES)
def quote_line_form(request, pk):
    """The "add a line" form, filled from the product picked (htmx swaps it in on the picker's change)."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    products = product_selectors.picker_products(actor=request.user, currency=quote.currency)
    picked = {str(p.pk): p for p in products}.get(request.GET.get("new-product", ""))
    initial = {"quantity": 1}
    if picked is not None:
        initial.update(
            product=str(picked.pk),
            description=picked.name,
            unit_price=picked.unit_price,
            tax_rate=picked.tax_rate.normalize(),
            discount_pct=0,
        )
    form = QuoteLineForm(prefix="new", products=products, initial=initial)
    form.pick_with(reverse("sales:quote_line_form", args=[quote.pk]))
    return render(request, "sales/quotes/_line_add.html", {"quote": quote, "add_form": form})


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_line_add(request, pk):
    quote = selectors.quote_get(actor=request.user, pk=pk)
    products = product_selectors.picker_products(actor=request.user, currency=quote.currency)
    form = QuoteLineForm(request.POST, prefix="new", products=products)
    if not form.is_valid():
        return _lines_response(request, quote, add_form=form, error=_("Check the new line."))
    try:
        services.quote_item_add(quote=quote, actor=request.user, **form.for_add())
    except ValidationError as error:
        _apply_errors(form, error)
        return _lines_response(request, quote, add_form=form, error=_error_text(error))
    return _lines_response(request, quote)


def _item(quote: Quote, item_pk) -> QuoteItem:
    item = QuoteItem.objects.filter(organization_id=quote.organization_id, quote=quote, pk=item_pk).first()
    if item is None:
        raise Http404
    return item


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_line_update(request, pk, item_pk):
    quote = selectors.quote_get(actor=request.user, pk=pk)
    item = _item(quote, item_pk)
    form = QuoteLineForm(request.POST, prefix=f"line-{item.pk}", with_product=False)
    if not form.is_valid():
        return _lines_response(
            request, quote, failed={str(item.pk): form}, error=_("Check the highlighted line.")
        )
    try:
        services.quote_item_update(item=item, actor=request.user, **form.for_update())
    except ValidationError as error:
        return _lines_response(request, quote, error=_error_text(error))
    return _lines_response(request, quote)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_line_remove(request, pk, item_pk):
    quote = selectors.quote_get(actor=request.user, pk=pk)
    item = _item(quote, item_pk)
    try:
        services.quote_item_remove(item=item, actor=request.user)
    except ValidationError as error:
        return _lines_response(request, quote, error=_error_text(error))
    return _lines_response(request, quote)


# --- The approval flow and the customer's answer ------------------------------------------------------------


def _act(request, pk, action, success: str):
    """Run one status step on the quote with the posted comment; errors come back as messages."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    form = CommentForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        result = action(quote=quote, actor=request.user, comment=comment)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return None, quote
    except PermissionDenied:
        messages.error(request, _("You may not do that with this quote."))
        return None, quote
    messages.success(request, success)
    return result, quote


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_submit(request, pk):
    result, quote = _act(request, pk, services.quote_submit, _("Submitted."))
    if result is not None and result.status == Status.PENDING_APPROVAL:
        messages.info(request, _("This quote needs a manager's approval; it is in the approval queue."))
    elif result is not None:
        messages.info(request, _("No approval was needed: the quote is approved and can be sent."))
    return redirect("sales:quote_detail", pk=quote.pk)


def _after_decision(request, quote: Quote):
    if request.POST.get("next") == "queue":
        return redirect("sales:approval_queue")
    return redirect("sales:quote_detail", pk=quote.pk)


@require_POST
@requires(Capability.APPROVE_QUOTES)
def quote_approve(request, pk):
    _result, quote = _act(request, pk, services.quote_approve, _("Approved."))
    return _after_decision(request, quote)


@require_POST
@requires(Capability.APPROVE_QUOTES)
def quote_reject(request, pk):
    _result, quote = _act(
        request, pk, services.quote_reject, _("Rejected: the quote is back with its author.")
    )
    return _after_decision(request, quote)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_send(request, pk):
    _result, quote = _act(request, pk, services.quote_mark_sent, _("Marked as sent."))
    return redirect("sales:quote_detail", pk=quote.pk)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_accept(request, pk):
    """Accept: the deal is won and one order made (a second submit finds the same order)."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    form = CommentForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        order = services.quote_accept(quote=quote, actor=request.user, comment=comment)
    except ValidationError as error:
        if getattr(error, "code", None) == "expired":
            services.quote_expire_if_due(quote=quote)
        messages.error(request, _error_text(error))
    except PermissionDenied:
        messages.error(request, _("You may not do that with this quote."))
    else:
        messages.success(
            request,
            _("Accepted: the deal is won and order %(order)s is made.") % {"order": order.order_number},
        )
    return redirect("sales:quote_detail", pk=quote.pk)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_decline(request, pk):
    _result, quote = _act(request, pk, services.quote_decline, _("Marked as declined."))
    return redirect("sales:quote_detail", pk=quote.pk)


@require_POST
@requires(Capability.EDIT_QUOTES)
def quote_revise(request, pk):
    revision, quote = _act(request, pk, services.quote_revise, _("A new version is started."))
    return redirect("sales:quote_detail", pk=(revision or quote).pk)


# --- Versions, print ----------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_QUOTES)
def quote_compare(request, pk):
    """Two versions side by side: this one and `?with=<id>` (default: the version before it, or the next
    one for a first version). The older one is always on the left."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    versions = selectors.quote_versions(quote=quote)
    if len(versions) < 2:
        messages.info(request, _("This quote has only one version."))
        return redirect("sales:quote_detail", pk=quote.pk)
    other_id = request.GET.get("with", "")
    other = next((v for v in versions if str(v.pk) == other_id and v.pk != quote.pk), None)
    if other is None:
        position = next(i for i, v in enumerate(versions) if v.pk == quote.pk)
        other = versions[position - 1] if position > 0 else versions[1]
    left, right = sorted(
        [quote, selectors.quote_get(actor=request.user, pk=other.pk)], key=lambda q: q.version
    )
    context = {
        "title": _("Compare versions of %(number)s") % {"number": quote.quote_number},
        "quote": quote,
        "versions": versions,
        "comparison": selectors.quote_compare(left=left, right=right),
    }
    return render(request, "sales/quotes/compare.html", context)


@require_GET
@requires(Capability.VIEW_QUOTES)
def quote_print(request, pk):
    """The printable quote (the browser's "Print" saves it as PDF)."""
    quote = selectors.quote_get(actor=request.user, pk=pk)
    context = {
        "title": f"{quote.quote_number} v{quote.version}",
        "quote": quote,
        "customer": quote.opportunity.customer,
        "items": selectors.quote_items(quote=quote),
        "organization": request.user.organization,
    }
    return render(request, "sales/quotes/print.html", context)


def _no_fetching(uri: str, rel: str) -> str:
    """xhtml2pdf's link callback: the PDF template links nothing, and nothing a quote contains is fetched
    (no file or network access from user text)."""
    return ""


@require_GET
@requires(Capability.VIEW_QUOTES)
def quote_pdf(request, pk):
    """The quote as a PDF file (the printable page's content, laid out with tables for xhtml2pdf)."""
    from xhtml2pdf import pisa

    quote = selectors.quote_get(actor=request.user, pk=pk)
    html = render_to_string(
        "sales/quotes/pdf.html",
        {
            "quote": quote,
            "customer": quote.opportunity.customer,
            "items": selectors.quote_items(quote=quote),
            "organization": request.user.organization,
        },
        request=request,
    )
    document = io.BytesIO()
    result = pisa.CreatePDF(html, dest=document, link_callback=_no_fetching, encoding="utf-8")
    if result.err:
        raise RuntimeError(f"The PDF of quote {quote.pk} could not be made ({result.err} errors).")
    response = HttpResponse(document.getvalue(), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{quote.quote_number}-v{quote.version}.pdf"'
    return response


# --- Lists --------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_QUOTES)
def quote_list(request):
    filters = QuoteListForm(request.GET or None)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    page = selectors.quote_page(
        actor=request.user, status=status, cursor=request.GET.get("cursor"), per_page=PER_PAGE
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": _("Quotes"),
        "page": page,
        "filters": filters,
        "status": status,
        "statuses": Status.choices,
        "querystring": query.urlencode(),
    }
    return render(request, "sales/quotes/list.html", context)


@require_GET
@requires(Capability.APPROVE_QUOTES)
def approval_queue(request):
    page = selectors.approval_queue(actor=request.user, cursor=request.GET.get("cursor"), per_page=PER_PAGE)
    count, capped = selectors.pending_approval_count(actor=request.user)
    context = {
        "title": _("Approvals"),
        "page": page,
        "count": count,
        "capped": capped,
        "comment_form": CommentForm(),
    }
    return render(request, "sales/quotes/approvals.html", context)
