"""The customer 360 "Consent and privacy" panel's form: record a consent statement (EDIT_CUSTOMERS).

An htmx POST answers with the panel re-rendered (with the form's errors, if any); a plain POST redirects
back to the customer's page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from compliance.forms_consent import ConsentRecordForm
from compliance.selectors.consent import consent_panel_for_customer
from compliance.services.consent import consent_record
from crm.middleware import client_ip
from crm.permissions import Capability, requires
from crm.views import _apply_errors
from customers.selectors import customer_get

PANEL_TEMPLATE = "compliance/consent/_customer_panel.html"


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def consent_record_add(request, pk):
    customer = customer_get(actor=request.user, pk=pk)
    form = ConsentRecordForm(request.POST)
    recorded = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            consent_record(
                customer=customer,
                purpose=data["purpose"],
                granted=data["granted"],
                source=data["source"],
                proof=data["proof"],
                actor=request.user,
                ip_address=client_ip(request) or None,
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            recorded = True
    if not request.headers.get("HX-Request"):
        if recorded:
            messages.success(request, _("Consent statement recorded."))
        else:
            messages.error(
                request, _("The consent statement was not recorded: %(errors)s") % {"errors": _errors(form)}
            )
        return redirect("customers:detail", pk=customer.pk)
    context = {
        "customer": customer,
        "data": consent_panel_for_customer(customer=customer, actor=request.user),
        "consent_form": ConsentRecordForm() if recorded else form,
        "recorded": recorded,
    }
    return render(request, PANEL_TEMPLATE, context)


def _errors(form) -> str:
    return "; ".join(f"{error}" for errors in form.errors.values() for error in errors)
