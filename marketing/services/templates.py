"""Writes to email templates: create, update, duplicate, archive / restore, and the "send me a test" email.

Every write needs MANAGE_CAMPAIGNS. The subject and both bodies are checked with `merge.validate` here, so
no code path stores a template with an unknown merge field, a template tag or a malformed field; each
problem is a field error naming it. Archiving is refused while a scheduled or sending campaign (or one of
its A/B variants) or an active sequence still needs the template.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, require_capability
from customers.models import Customer
from marketing import merge
from marketing.models import EmailTemplate
from marketing.selectors.templates import template_usage

logger = logging.getLogger(__name__)

MERGE_PARTS = ("subject", "html_body", "text_body")
TEST_SUBJECT_PREFIX = "[Test] "


def merge_errors(*, subject: str, html_body: str, text_body: str) -> dict[str, list[str]]:
    """The merge-field problems of each part, by field name (empty when all three are clean)."""
    errors: dict[str, list[str]] = {}
    for name, source in zip(MERGE_PARTS, (subject, html_body, text_body), strict=True):
        try:
            merge.validate(source or "")
        except ValidationError as error:
            errors[name] = error.messages
    if "\n" in (subject or "") or "\r" in (subject or ""):
        errors.setdefault("subject", []).append(_("The subject must be one line."))
    return errors


def _check(template: EmailTemplate) -> None:
    """Field rules, merge fields, and the case-insensitive unique name, as field errors."""
    template.name = (template.name or "").strip()
    template.subject = (template.subject or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        template.full_clean(exclude=["organization", "created_by"], validate_unique=False)
    except ValidationError as error:
        errors.update(error.message_dict)
    for field, messages in merge_errors(
        subject=template.subject, html_body=template.html_body, text_body=template.text_body
    ).items():
        errors.setdefault(field, []).extend(messages)
    if (
        template.name
        and EmailTemplate.objects.filter(organization_id=template.organization_id, name__iexact=template.name)
        .exclude(pk=template.pk)
        .exists()
    ):
        errors.setdefault("name", []).append(_("Another email template already has this name."))
    if errors:
        raise ValidationError(errors)


def _save(template: EmailTemplate, **options) -> None:
    """Save; a name taken by a concurrent save (the unique index decides) is the same field error."""
    try:
        with transaction.atomic():
            template.save(**options)
    except IntegrityError as error:
        if "email_templates_org_name_ci_key" in str(error):
            raise ValidationError({"name": _("Another email template already has this name.")}) from error
        raise


@transaction.atomic
def email_template_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    subject: str,
    html_body: str,
    text_body: str = "",
    description: str = "",
) -> EmailTemplate:
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    template = EmailTemplate(
        organization=organization,
        name=name,
        description=description,
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        created_by=actor,
    )
    _check(template)
    _save(template, force_insert=True)
    return template


@transaction.atomic
def email_template_update(
    *,
    template: EmailTemplate,
    actor: User | None,
    name: str,
    subject: str,
    html_body: str,
    text_body: str = "",
    description: str = "",
) -> EmailTemplate:
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    template.name, template.description, template.subject = name, description, subject
    template.html_body, template.text_body = html_body, text_body
    _check(template)
    _save(template)
    return template


def _copy_name(template: EmailTemplate) -> str:
    """ "<name> (copy)", or "(copy 2)", "(copy 3)", ... when taken, within the name's 150 characters."""
    max_length = EmailTemplate._meta.get_field("name").max_length
    taken = {
        name.lower()
        for name in EmailTemplate.objects.filter(
            organization_id=template.organization_id, name__istartswith=template.name[:100]
        ).values_list("name", flat=True)
    }
    number = 1
    while True:
        suffix = _(" (copy)") if number == 1 else _(" (copy %(n)d)") % {"n": number}
        candidate = template.name[: max_length - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        number += 1


@transaction.atomic
def email_template_duplicate(*, template: EmailTemplate, actor: User | None) -> EmailTemplate:
    """A new, active copy of `template` under the next free "(copy)" name."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    copy = EmailTemplate(
        organization_id=template.organization_id,
        name=_copy_name(template),
        description=template.description,
        subject=template.subject,
        html_body=template.html_body,
        text_body=template.text_body,
        created_by=actor,
    )
    _save(copy, force_insert=True)
    return copy


@transaction.atomic
def email_template_archive(*, template: EmailTemplate, actor: User | None) -> EmailTemplate:
    """Hide a template from new campaigns and sequences; refused while something scheduled, sending or
    active still needs it (the row is locked first, so two archives and an edit do not interleave)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    EmailTemplate.objects.select_for_update().filter(
        organization_id=template.organization_id, pk=template.pk
    ).first()
    usage = template_usage(template=template)
    if usage:
        names = ", ".join(f"{use.kind_label} “{use.name}”" for use in usage)
        raise ValidationError(
            _(
                "“%(name)s” cannot be archived: it is still used by %(users)s. Finish, unschedule or pause them first."
            )
            % {"name": template.name, "users": names}
        )
    if not template.is_archived:
        template.is_archived = True
        template.save(update_fields=["is_archived", "updated_at"])
    return template


@transaction.atomic
def email_template_restore(*, template: EmailTemplate, actor: User | None) -> EmailTemplate:
    """Make an archived template available again."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if template.is_archived:
        template.is_archived = False
        template.save(update_fields=["is_archived", "updated_at"])
    return template


def render_for(
    *, organization: Organization, subject: str, html_body: str, text_body: str, customer: Customer | None
) -> merge.Rendered:
    """The three parts as `customer` would receive them (example values without a customer; an example
    unsubscribe link, since there is no send to unsubscribe from)."""
    if customer is None:
        values = merge.example_values()
        values["organization.name"] = organization.name
    else:
        values = merge.values_for(
            customer=customer,
            organization=organization,
            unsubscribe_url=merge.example_values()["unsubscribe_url"],
        )
    return merge.render(
        subject=subject or "",
        html_body=html_body or "",
        text_body=text_body or "",
        values=values,
    )


def _send_test(*, to: str, rendered: merge.Rendered) -> None:
    """Runs after commit; a mail server error is logged, not raised into a response already decided."""
    message = EmailMultiAlternatives(
        subject=TEST_SUBJECT_PREFIX + rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Auto-Submitted": "auto-generated"},
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    try:
        message.send()
    except Exception:
        logger.exception("test email to %s failed", to)


@transaction.atomic
def email_template_send_test(
    *,
    actor: User,
    subject: str,
    html_body: str,
    text_body: str = "",
    customer: Customer | None = None,
) -> merge.Rendered:
    """Email the template, rendered for `customer`, to the acting user's own address (subject prefixed
    "[Test]"), once the transaction commits. Works for unsaved edits: it takes the parts, not a row."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    errors = merge_errors(subject=subject, html_body=html_body, text_body=text_body)
    if not (subject or "").strip():
        errors.setdefault("subject", []).append(_("A test email needs a subject."))
    if errors:
        raise ValidationError(errors)
    rendered = render_for(
        organization=actor.organization,
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        customer=customer,
    )
    transaction.on_commit(lambda: _send_test(to=actor.email, rendered=rendered))
    return rendered
