"""Who may be emailed (marketing.selectors.audience.mailable_customers): each kind of excluded customer is
left out, suppressions match whatever the case of the address, and nothing of another organization."""

from __future__ import annotations

from django.utils import timezone

from crm.tenancy import tenant_context
from marketing.models import Suppression
from marketing.selectors.audience import mailable_customers
from tests import factories


def _mailable(org) -> set:
    with tenant_context(org.pk):
        return set(mailable_customers(org.pk).values_list("email", flat=True))


def test_mailable_customers_excludes_every_kind_of_customer_who_may_not_be_emailed(org_a, org_b):
    def make(email, **fields):
        return factories.customer(org_a, email=email, email_opt_in=fields.pop("email_opt_in", True), **fields)

    make("ok@a.example")
    make("also-ok@a.example")
    factories.customer(org_a, email="", email_opt_in=True)  # no email
    make("not-opted-in@a.example", email_opt_in=False)
    restricted = make("restricted@a.example")
    make("inactive@a.example", status="inactive")
    erased = make("erased@a.example")
    anonymized = make("anonymized@a.example")
    for reason in ("unsubscribed", "bounced", "complained", "manual"):
        make(f"{reason}@a.example")
    with tenant_context(org_a.pk):
        type(erased).objects.filter(pk=restricted.pk).update(processing_restricted=True)
        type(erased).objects.filter(pk=erased.pk).update(erased_at=timezone.now())
        type(anonymized).objects.filter(pk=anonymized.pk).update(anonymized_at=timezone.now())
        for reason in ("unsubscribed", "bounced", "complained", "manual"):
            Suppression.objects.create(organization=org_a, email=f"{reason}@a.example", reason=reason)
    factories.customer(org_b, email="other-org@b.example", email_opt_in=True)

    assert _mailable(org_a) == {"ok@a.example", "also-ok@a.example"}


def test_a_suppression_matches_the_address_whatever_its_case(org_a):
    customer = factories.customer(org_a, email="mixed.case@a.example", email_opt_in=True)
    with tenant_context(org_a.pk):  # an address stored as typed (an import, an older row)
        type(customer).objects.filter(pk=customer.pk).update(email="Mixed.Case@A.example")
    assert _mailable(org_a) == {"Mixed.Case@A.example"}
    with tenant_context(org_a.pk):
        Suppression.objects.create(organization=org_a, email="mixed.case@a.example", reason="unsubscribed")
    assert _mailable(org_a) == set()


def test_a_suppression_of_another_organization_does_not_exclude(org_a, org_b):
    factories.customer(org_a, email="shared@x.example", email_opt_in=True)
    with tenant_context(org_b.pk):
        Suppression.objects.create(organization=org_b, email="shared@x.example", reason="unsubscribed")
    assert _mailable(org_a) == {"shared@x.example"}
