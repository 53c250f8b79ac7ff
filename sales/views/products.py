"""The product catalogue: list with search, create, edit, activate / deactivate (MANAGE_PRODUCTS)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.permissions import Capability, requires
from crm.views import _apply_errors, _back
from sales.forms_quotes import ProductForm, ProductSearchForm
from sales.selectors import products as selectors
from sales.services import products as services

PER_PAGE = 50


@requires(Capability.MANAGE_PRODUCTS)
def product_list(request):
    search = ProductSearchForm(request.GET or None)
    data = search.cleaned_data if search.is_valid() else {}
    page = selectors.product_page(
        actor=request.user,
        query=data.get("q", ""),
        active=data.get("active", ""),
        cursor=request.GET.get("cursor"),
        per_page=PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": _("Products"),
        "page": page,
        "search": search,
        "searching": bool(data.get("q") or data.get("active")),
        "querystring": query.urlencode(),
    }
    return render(request, "sales/products/list.html", context)


@requires(Capability.MANAGE_PRODUCTS)
def product_create(request):
    form = ProductForm(
        request.POST or None, initial={"currency": request.user.organization.currency, "active": True}
    )
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_create(
                organization=request.user.organization, actor=request.user, **form.changes()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is added to the catalogue.") % {"name": product.name})
            return redirect("sales:product_list")
    return render(
        request, "sales/products/form.html", {"form": form, "title": _("New product"), "creating": True}
    )


@requires(Capability.MANAGE_PRODUCTS)
def product_edit(request, pk):
    product = selectors.product_get(actor=request.user, pk=pk)
    form = ProductForm(request.POST or None, instance=product)
    if request.method == "POST" and form.is_valid():
        try:
            services.product_update(product=product, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": product.name})
            return redirect("sales:product_list")
    context = {"form": form, "product": product, "title": _("Edit %(name)s") % {"name": product.name}}
    return render(request, "sales/products/form.html", context)


@require_POST
@requires(Capability.MANAGE_PRODUCTS)
def product_set_active(request, pk):
    product = selectors.product_get(actor=request.user, pk=pk)
    active = request.POST.get("active") == "1"
    services.product_set_active(product=product, actor=request.user, active=active)
    if active:
        messages.success(request, _("%(name)s is active again.") % {"name": product.name})
    else:
        messages.success(
            request, _("%(name)s is deactivated: it is no longer offered on quotes.") % {"name": product.name}
        )
    return redirect(_back(request, reverse("sales:product_list")))
