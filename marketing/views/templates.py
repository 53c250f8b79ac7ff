"""Email templates (MANAGE_CAMPAIGNS): the list, the editor with a merge-field picker and a live preview
against a chosen customer, "send me a test", duplicate, archive / restore.

The preview shows the rendered HTML in a sandboxed `<iframe sandbox srcdoc=...>`: no scripts, an opaque
origin, so template HTML can never act in the CRM page. A srcdoc frame inherits the page's
Content-Security-Policy, so the editor pages (only they) also allow inline styles and https images, which
is what an email's HTML is made of; scripts stay `'self'`-only.
"""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from crm.permissions import Capability, requires
from crm.views import _apply_errors, _back
from marketing import merge
from marketing.forms_templates import (
    EmailTemplateForm,
    TemplatePreviewForm,
    TemplateSearchForm,
    TemplateTextForm,
)
from marketing.selectors import templates as selectors
from marketing.services import templates as services

MANAGE = Capability.MANAGE_CAMPAIGNS
PER_PAGE = 50
# What the preview frame may load: the styles and images an email is made of (see the module docstring).
PREVIEW_CSP = {"style-src": [UNSAFE_INLINE], "img-src": ["https:"]}
PREVIEW_CHANGED = "template-changed"  # the htmx event that refreshes the preview


@require_GET
@requires(MANAGE)
def template_list(request):
    search = TemplateSearchForm(request.GET or None)
    data = search.cleaned_data if search.is_valid() else {}
    status = data.get("status") or "active"
    page = selectors.template_page(
        actor=request.user,
        query=data.get("q", ""),
        status=status,
        cursor=request.GET.get("cursor"),
        per_page=PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": _("Email templates"),
        "page": page,
        "counts": selectors.template_counts(actor=request.user),
        "search": search,
        "status": status,
        "searching": bool(data.get("q")) or status != "active",
        "querystring": query.urlencode(),
    }
    return render(request, "marketing/templates/list.html", context)


def _merge_fields() -> list[tuple[str, str]]:
    """(what to write, its label) for the picker."""
    return [(f"{{{{ {field.name} }}}}", str(field.label)) for field in merge.FIELDS]


def _preview_context(request, *, subject: str, html_body: str, text_body: str, customer=None) -> dict:
    """What the preview partial shows: the rendered parts, the merge problems, the unsubscribe warning."""
    problems = services.merge_errors(subject=subject, html_body=html_body, text_body=text_body)
    return {
        "rendered": services.render_for(
            organization=request.user.organization,
            subject=subject,
            html_body=html_body,
            text_body=text_body,
            customer=customer,
        ),
        "preview_customer": customer,
        "text_generated": not (text_body or "").strip(),
        "problems": [message for messages_ in problems.values() for message in messages_],
        "missing_unsubscribe": bool(html_body) and not merge.has_unsubscribe_link(html_body),
    }


def _form_page(request, form, template=None, *, name: str = ""):
    """The editor; `name` is the template's saved name (the form may hold an unsaved one)."""
    source = form.data if form.is_bound else form.initial
    context = {
        "title": _("Edit %(name)s") % {"name": name} if template else _("New email template"),
        "form": form,
        "template": template,
        "usage": selectors.template_usage(template=template) if template else [],
        "merge_fields": _merge_fields(),
        "preview_changed": PREVIEW_CHANGED,
        **_preview_context(
            request,
            subject=source.get("subject", ""),
            html_body=source.get("html_body", ""),
            text_body=source.get("text_body", ""),
        ),
    }
    return render(request, "marketing/templates/form.html", context)


def _saved_message(request, template) -> None:
    messages.success(request, _("“%(name)s” is saved.") % {"name": template.name})
    if not merge.has_unsubscribe_link(template.html_body):
        messages.warning(
            request,
            _(
                "The HTML of “%(name)s” has no unsubscribe link. Add {{ unsubscribe_url }} so recipients "
                "can opt out in one click."
            )
            % {"name": template.name},
        )


@csp_update(PREVIEW_CSP)
@require_http_methods(["GET", "POST"])
@requires(MANAGE)
def template_create(request):
    form = EmailTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.email_template_create(
                organization=request.user.organization, actor=request.user, **form.changes()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            _saved_message(request, template)
            return redirect("marketing:template_edit", pk=template.pk)
    return _form_page(request, form)


@csp_update(PREVIEW_CSP)
@require_http_methods(["GET", "POST"])
@requires(MANAGE)
def template_edit(request, pk):
    template = selectors.template_get(actor=request.user, pk=pk)
    saved_name = template.name
    form = EmailTemplateForm(
        request.POST or None, initial=model_to_dict(template, EmailTemplateForm.Meta.fields)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.email_template_update(template=template, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            _saved_message(request, template)
            return redirect("marketing:template_edit", pk=template.pk)
    return _form_page(request, form, template, name=saved_name)


@require_POST
@requires(MANAGE)
def template_duplicate(request, pk):
    template = selectors.template_get(actor=request.user, pk=pk)
    copy = services.email_template_duplicate(template=template, actor=request.user)
    messages.success(request, _("“%(name)s” is a copy you can now edit.") % {"name": copy.name})
    return redirect("marketing:template_edit", pk=copy.pk)


@require_POST
@requires(MANAGE)
def template_archive(request, pk):
    template = selectors.template_get(actor=request.user, pk=pk)
    try:
        services.email_template_archive(template=template, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("“%(name)s” is archived: it is no longer offered for new campaigns and sequences.")
            % {"name": template.name},
        )
    return redirect(_back(request, reverse("marketing:template_list")))


@require_POST
@requires(MANAGE)
def template_restore(request, pk):
    template = selectors.template_get(actor=request.user, pk=pk)
    services.email_template_restore(template=template, actor=request.user)
    messages.success(request, _("“%(name)s” is active again.") % {"name": template.name})
    return redirect(_back(request, reverse("marketing:template_list")))


def _preview_input(request):
    """The preview / test-send form and the chosen customer (a foreign or unknown id is a 404)."""
    form = TemplatePreviewForm(request.POST)
    form.is_valid()
    data = {name: form.cleaned_data.get(name) or "" for name in ("subject", "html_body", "text_body")}
    customer_id = form.cleaned_data.get("preview_customer")
    customer = selectors.preview_customer_get(actor=request.user, pk=customer_id) if customer_id else None
    return data, customer


@require_POST
@requires(MANAGE)
def template_preview(request):
    """The live preview (htmx partial) of the editor's current, possibly unsaved, parts."""
    data, customer = _preview_input(request)
    return render(
        request, "marketing/templates/_preview.html", _preview_context(request, customer=customer, **data)
    )


@require_POST
@requires(MANAGE)
def template_send_test(request):
    """ "Send me a test" (htmx partial): the editor's parts rendered for the chosen customer, to the user."""
    data, customer = _preview_input(request)
    try:
        services.email_template_send_test(actor=request.user, customer=customer, **data)
    except ValidationError as error:
        context = {"sent": False, "errors": error.messages}
    else:
        context = {"sent": True, "to": request.user.email}
    return render(request, "marketing/templates/_test_send_result.html", context)


@require_GET
@requires(MANAGE)
def template_customer_options(request):
    """The preview's customer picker (htmx partial): the customers matching what was typed."""
    options = selectors.preview_customer_options(
        actor=request.user, query=request.GET.get("customer_query", "")
    )
    return render(request, "marketing/templates/_customer_options.html", {"options": options})


@require_POST
@requires(MANAGE)
def template_text_from_html(request):
    """ "Generate from HTML" (htmx partial): the plain-text field, filled from the HTML body."""
    source = TemplateTextForm(request.POST)
    source.is_valid()
    text = merge.text_from_html(source.cleaned_data.get("html_body") or "")
    form = EmailTemplateForm(initial={"text_body": text})
    response = render(request, "marketing/templates/_text_body_field.html", {"form": form})
    return trigger_client_event(response, PREVIEW_CHANGED)
