"""Delivery reports from the email provider, through django-anymail's tracking webhooks.

Anymail turns each provider's webhook (SendGrid, Mailgun, Amazon SES, Postmark, ...) into one signal,
`anymail.signals.tracking`, carrying an `AnymailTrackingEvent`. `tracking_received` finds the email by the
provider's message id (stored on the email_sends row when it was sent) and records the event with
marketing/events.py:

    delivered            -> delivered_at, status delivered, campaign.delivered_count
    bounced              -> bounced_at, status bounced, campaign.bounced_count, suppression (hard bounce)
    complained           -> complained_at, campaign.complained_count, suppression, email opt-in cleared
    rejected, failed     -> failed_at, status failed, campaign.failed_count
    unsubscribed         -> as the unsubscribe link (the provider's own list-unsubscribe handling)

Opens and clicks come from our own pixel and redirects (marketing/views/tracking.py); the provider's open
and click tracking should be off, and its "opened" / "clicked" events are ignored here so nothing is
counted twice. "deferred" (a soft bounce the provider retries), "queued" and "sent" change nothing.

Which organization: the lookup by message id runs in `system_context()` (the provider does not know our
tenants; it uses the partial index email_sends_message_idx) and reads only the row's key; the update
then runs in `tenant_context(organization)`.

Only the providers' tracking webhooks are mounted (at /anymail/<provider>/tracking/), those whose provider
is usable with the settings (installed, and its signing key set where it needs one), and every request
must carry the shared secret as HTTP basic auth (ANYMAIL_WEBHOOK_SECRET; docs/deploy.md). A request that
carries it skips the CSRF check (a provider has no CSRF token: the secret is its authorization); any
other POST goes through the ordinary CSRF check, and then through anymail's own validation.
"""

from __future__ import annotations

import logging
import warnings
from functools import wraps

from anymail.exceptions import AnymailError
from anymail.utils import get_anymail_setting, get_request_basic_auth
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from crm.tenancy import system_context, tenant_context
from marketing import events
from marketing.models import EmailSend

logger = logging.getLogger(__name__)

RECORDERS = {
    "delivered": lambda send, event, when: events.record_delivered(send=send, when=when),
    "bounced": lambda send, event, when: events.record_bounce(
        send=send, when=when, description=_description(event)
    ),
    "complained": lambda send, event, when: events.record_complaint(send=send, when=when),
    "rejected": lambda send, event, when: events.record_failure(
        send=send, when=when, description=_description(event)
    ),
    "failed": lambda send, event, when: events.record_failure(
        send=send, when=when, description=_description(event)
    ),
    "unsubscribed": lambda send, event, when: events.record_unsubscribe(send=send, when=when),
}


def _description(event) -> str:
    return " ".join(str(part) for part in (event.description, event.mta_response) if part)


def _find_send(message_id: str) -> EmailSend | None:
    """The email a provider's message id names, with just its key (organization, id, partition key)."""
    with system_context():
        rows = list(
            EmailSend.objects.filter(message_id=message_id)
            .exclude(message_id="")
            .only("organization_id", "id", "scheduled_send_time")[:2]
        )
    if len(rows) != 1:
        # None: not one of ours (another app sharing the provider account, a test send). Two: a message id
        # reused by the provider, which we do not guess between.
        if rows:
            logger.warning("Anymail event for message id %s matches several emails; ignored", message_id)
        return None
    return rows[0]


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    """The receiver of anymail.signals.tracking (connected in marketing/registration.py)."""
    record = RECORDERS.get(event.event_type)
    if record is None or not event.message_id:
        return
    found = _find_send(str(event.message_id))
    if found is None:
        logger.info("Anymail %s event for unknown message id %s", esp_name, event.message_id)
        return
    with tenant_context(found.organization_id):
        send = EmailSend.objects.get(
            organization_id=found.organization_id,
            pk=found.pk,
            scheduled_send_time=found.scheduled_send_time,
        )
        record(send, event, event.timestamp or timezone.now())


def _has_webhook_secret(request) -> bool:
    secrets = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secrets, str):
        secrets = [secrets] if secrets else []
    given = get_request_basic_auth(request)
    return bool(given) and any(constant_time_compare(given, secret) for secret in secrets)


def _authenticated(view):
    def checked(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    # Not csrf_protect(view): anymail's views are marked csrf_exempt, which csrf_protect would honour.
    protected = csrf_protect(checked)

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if _has_webhook_secret(request):
            return view(request, *args, **kwargs)
        return protected(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def _usable(view) -> bool:
    """Whether a provider's webhook view works with these settings: some need a package (Amazon SES:
    boto3) or a signing key (Mailgun, MailerSend, Postal, Unisender Go) and would answer 500 otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "insecure without a secret": _authenticated refuses those
            view.view_class(**view.view_initkwargs)
    except (AnymailError, ImproperlyConfigured):
        return False
    return True


def tracking_urlpatterns() -> list[URLPattern]:
    """Anymail's tracking webhook URLs (not its inbound-mail ones) of the providers usable with these
    settings, each behind `_authenticated`."""
    from anymail.urls import urlpatterns

    return [
        URLPattern(pattern.pattern, _authenticated(pattern.callback), pattern.default_args, pattern.name)
        for pattern in urlpatterns
        if pattern.name.endswith("_tracking_webhook")
        and not pattern.name.startswith("sendinblue")  # a deprecated alias of Brevo's, which is mounted
        and _usable(pattern.callback)
    ]


# This module is also the URLconf mounted at /anymail/ (crm/urls.py), under anymail's own namespace.
app_name = "anymail"
urlpatterns = tracking_urlpatterns()
