"""Factories of the marketing tests (plain functions, like tests/factories.py). Each area adds its own."""

from __future__ import annotations

from crm.tenancy import tenant_context
from marketing.models import Campaign, EmailTemplate


def email_template(org, **fields) -> EmailTemplate:
    fields.setdefault("name", "Newsletter")
    fields.setdefault("subject", 'Hello {{ customer.first_name|default:"there" }}')
    fields.setdefault(
        "html_body",
        '<p>Hi {{ customer.first_name|default:"there" }},</p><p><a href="https://example.com/offer">Offer</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    )
    fields.setdefault(
        "text_body", 'Hi {{ customer.first_name|default:"there" }}\nUnsubscribe: {{ unsubscribe_url }}'
    )
    with tenant_context(org.pk):
        return EmailTemplate.objects.create(organization=org, **fields)


def campaign(org, **fields) -> Campaign:
    fields.setdefault("name", "Spring launch")
    fields.setdefault("channels", ["email"])
    with tenant_context(org.pk):
        return Campaign.objects.create(organization=org, **fields)
