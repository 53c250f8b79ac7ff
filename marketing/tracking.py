"""Tracking of marketing email: signed tokens for the open pixel, click redirects and one-click unsubscribe.

A token names one email_sends row (organization, id, scheduled send time: the row's full key, so a lookup
touches one partition) and is signed with the project's secret under its own salt: it cannot be forged or
altered, and a tampered token is a 404. A click token also carries the target URL, and the redirect is
followed only when that URL is a literal link of the email's template (never an open redirect).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from marketing.merge import HREF_RE

SALT = "marketing.tracking"


@dataclass(frozen=True)
class TrackedSend:
    organization_id: uuid.UUID
    send_id: uuid.UUID
    scheduled_send_time: datetime.datetime
    url: str = ""


def make_token(send, url: str = "") -> str:
    payload = [str(send.organization_id), str(send.pk), send.scheduled_send_time.isoformat()]
    if url:
        payload.append(url)
    return signing.dumps(payload, salt=SALT, compress=True)


def read_token(token: str) -> TrackedSend:
    """The send a token names; raises signing.BadSignature (a 404 for the views) when it was tampered with."""
    try:
        payload = signing.loads(token, salt=SALT)
        organization_id, send_id, scheduled = payload[:3]
        return TrackedSend(
            organization_id=uuid.UUID(organization_id),
            send_id=uuid.UUID(send_id),
            scheduled_send_time=datetime.datetime.fromisoformat(scheduled),
            url=payload[3] if len(payload) > 3 else "",
        )
    except (ValueError, TypeError, IndexError) as error:
        raise signing.BadSignature("malformed tracking token") from error


def _absolute(path: str) -> str:
    return f"{settings.CRM_BASE_URL}{path}"


def open_pixel_url(send) -> str:
    return _absolute(reverse("tracking:open", args=[make_token(send)]))


def click_url(send, url: str) -> str:
    return _absolute(reverse("tracking:click", args=[make_token(send, url)]))


def unsubscribe_url(send) -> str:
    return _absolute(reverse("tracking:unsubscribe", args=[make_token(send)]))


def rewrite_links(html: str, send) -> str:
    """Every literal http(s) link of a rendered HTML body, pointed at its click redirect. Links that are
    already tracking URLs (the merged unsubscribe link) stay as they are."""
    own = _absolute(reverse("tracking:unsubscribe", args=["TOKEN"])).split("TOKEN")[0]

    def tracked(match) -> str:
        url, quote = match.group("url"), match.group("q")
        if url.startswith(own):
            return match.group(0)
        return f"href={quote}{click_url(send, url)}{quote}"

    return HREF_RE.sub(tracked, html)
