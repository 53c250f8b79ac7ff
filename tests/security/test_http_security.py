"""HTTP-level defences: CSRF on every POST, security headers on every page, HttpOnly cookies, escaped
user content (XSS), and templates that never switch escaping off."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from crm.tenancy import system_context
from tests import factories
from tests.factories import PASSWORD
from tests.security.conftest import PUBLIC_VIEWS, app_routes, object_url_kwargs, url_routes

CSRF_FAILURE = "CSRF verification failed"


def _fill(route, side, actor) -> str:
    if route.key == "password_reset_confirm":
        return route.url(uidb64="MQ", token="set-password")
    return route.url(**(object_url_kwargs(route, side, actor)[0] if route.params else {}))


# --- CSRF -----------------------------------------------------------------------------------------------


def test_every_post_without_a_csrf_token_is_refused(tenants, signed_in):
    """Every route is posted to (a view that serves only GET is still behind the CSRF middleware): signed in
    for every URL, and anonymously for the public ones, login first of all."""
    signed = signed_in(tenants.a.admin, enforce_csrf_checks=True)
    anonymous = Client(enforce_csrf_checks=True)
    failures = []
    posted = []
    for route in url_routes():
        if route.regex:
            continue  # the admin's app index and catch-all: no form behind them
        url = _fill(route, tenants.a, tenants.a.admin)
        clients = [("signed in", signed)] + ([("anonymous", anonymous)] if route.key in PUBLIC_VIEWS else [])
        for who, client in clients:
            response = client.post(
                url, {"username": tenants.a.admin.email, "password": PASSWORD, "active": "0"}
            )
            posted.append(route.key)
            if response.status_code != 403 or CSRF_FAILURE not in response.content.decode():
                failures.append(f"{who} POST {url} ({route.key}): {response.status_code}")
    assert not failures, "\n".join(failures)
    assert {"login", "logout", "users:set_active", "notifications:open", "admin:login"} <= set(posted)
    # Nothing went through: the admin is still signed in and the member still active.
    assert signed.get(reverse("home")).status_code == 200
    with system_context():
        tenants.a.member.refresh_from_db()
    assert tenants.a.member.is_active


def test_a_post_with_the_csrf_token_goes_through(tenants):
    """The control for the test above: with the token, the same login POST is not refused."""
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        reverse("login"),
        {"username": tenants.a.member.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert response.url == reverse("home")


# --- Headers ----------------------------------------------------------------------------------------------


def _csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def _header_problems(response, *, signed_in: bool) -> list[str]:
    problems = []
    if response.get("X-Frame-Options") != "DENY":
        problems.append(f"X-Frame-Options {response.get('X-Frame-Options')!r}")
    if response.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"X-Content-Type-Options {response.get('X-Content-Type-Options')!r}")
    if response.get("Referrer-Policy") not in (
        "strict-origin-when-cross-origin",
        "same-origin",
        "no-referrer",
    ):
        problems.append(f"Referrer-Policy {response.get('Referrer-Policy')!r}")
    csp = response.get("Content-Security-Policy")
    if not csp:
        problems.append("no Content-Security-Policy")
    else:
        directives = _csp_directives(csp)
        scripts = directives.get("script-src", directives.get("default-src"))
        if scripts is None or "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
            problems.append(f"script-src {scripts}")
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"frame-ancestors {directives.get('frame-ancestors')}")
    if not re.fullmatch(r"[A-Za-z0-9._-]{8,64}", response.get("X-Request-ID", "")):
        problems.append(f"X-Request-ID {response.get('X-Request-ID')!r}")
    if signed_in and "no-store" not in response.get("Cache-Control", ""):
        problems.append(f"Cache-Control {response.get('Cache-Control')!r}")
    return problems


def test_every_page_carries_the_security_headers(tenants, signed_in):
    signed = signed_in(tenants.a.admin)
    anonymous = Client()
    pages = []
    for route in app_routes():
        url = _fill(route, tenants.a, tenants.a.admin)
        if route.key not in PUBLIC_VIEWS:
            pages.append((True, url))
        elif route.key != "logout":
            pages.append((False, url))
    pages += [
        (True, reverse("admin:index")),
        (True, reverse("admin:crm_user_changelist")),
        (True, "/no-such-page/"),
        (False, "/no-such-page/"),
        (False, reverse("admin:login")),
        (True, reverse("search") + "?q=ab"),
    ]
    failures = []
    statuses = set()
    for is_signed_in, url in pages:
        response = (signed if is_signed_in else anonymous).get(url)
        statuses.add(response.status_code)
        if problems := _header_problems(response, signed_in=is_signed_in):
            failures.append(
                f"{'signed in' if is_signed_in else 'anonymous'} GET {url} ({response.status_code}): {problems}"
            )
    assert not failures, "\n".join(failures)
    assert {200, 404} <= statuses  # ordinary pages and error pages were both checked


def test_a_well_formed_incoming_request_id_is_kept_and_a_malformed_one_replaced(db):
    client = Client()
    assert client.get(reverse("login"), HTTP_X_REQUEST_ID="trace-0123456789").get("X-Request-ID") == (
        "trace-0123456789"
    )
    replaced = client.get(reverse("login"), HTTP_X_REQUEST_ID="<script>\r\nSet-Cookie: x=1").get(
        "X-Request-ID"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_session_and_csrf_cookies_are_http_only(tenants):
    client = Client()
    response = client.post(reverse("login"), {"username": tenants.a.member.email, "password": PASSWORD})
    assert response.status_code == 302
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session_cookie["httponly"] is True
    assert session_cookie["samesite"] == "Lax"
    csrf_cookie = client.get(reverse("login")).cookies.get(settings.CSRF_COOKIE_NAME) or client.cookies.get(
        settings.CSRF_COOKIE_NAME
    )
    assert csrf_cookie is not None and csrf_cookie["httponly"] is True


# --- XSS --------------------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
RAW = ("<script>alert(1)", "<img src=x onerror")


def test_user_supplied_names_and_titles_are_escaped_on_every_page_that_shows_them(tenants, signed_in):
    a = tenants.a
    victim = factories.user(a.org, role="sales_rep", first_name=SCRIPT, last_name=IMG, job_title=SCRIPT)
    factories.notification(a.admin, title=SCRIPT, body=IMG)
    with system_context():
        from crm.models import AuditLog

        created = AuditLog.objects.get(record_id=str(victim.pk), operation="INSERT")
    client = signed_in(a.admin)
    pages = {
        "users list": reverse("users:list"),
        "users list filtered": reverse("users:list") + "?q=alert",
        "home": reverse("home"),
        "search page": reverse("search") + "?q=alert",
        "user edit": reverse("users:edit", args=[victim.pk]),
        "audit list": reverse("audit:list"),
        "audit entry": reverse("audit:detail", args=[created.pk]),
        "notifications": reverse("notifications:list"),
        "admin users": reverse("admin:crm_user_changelist"),
    }
    failures = []
    for label, url in pages.items():
        response = client.get(url)
        body = response.content.decode()
        if response.status_code != 200:
            failures.append(f"{label} {url}: {response.status_code}")
        if raw := [r for r in RAW if r in body]:
            failures.append(f"{label} {url}: raw {raw}")
        if "&lt;script&gt;alert(1)" not in body:
            failures.append(f"{label} {url}: the payload is not shown at all (nothing was tested)")
    # The htmx partials of search and the bell render the same content without the layout.
    partials = {
        "search results": client.get(reverse("search"), {"q": "alert"}, HTTP_HX_REQUEST="true"),
        "bell": client.get(reverse("notifications:bell"), HTTP_HX_REQUEST="true"),
    }
    for label, response in partials.items():
        body = response.content.decode()
        if raw := [r for r in RAW if r in body]:
            failures.append(f"{label}: raw {raw}")
        if "&lt;script&gt;alert(1)" not in body:
            failures.append(f"{label}: the payload is not shown at all")
    assert not failures, "\n".join(failures)


def test_a_search_query_is_reflected_escaped(tenants, signed_in):
    client = signed_in(tenants.a.admin)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        body = client.get(reverse("search"), {"q": SCRIPT}, **headers).content.decode()
        assert "<script>alert(1)" not in body
        assert "&lt;script&gt;alert(1)" in body


# The plain-text email templates may switch escaping off: they are never rendered as HTML.
ESCAPING_OFF_ALLOWED = (
    "templates/registration/*.txt",
    "templates/registration/password_reset_email.html",
    "support/templates/support/email/*.txt",  # plain-text emails: no HTML to escape for
    "compliance/templates/compliance/email/*.txt",  # plain-text emails to data subjects, likewise
)
ESCAPING_OFF = re.compile(r"\|\s*safe\b|\|\s*safeseq\b|mark_safe|autoescape\s+off")


def test_templates_never_switch_html_escaping_off(db):
    root = Path(settings.BASE_DIR)
    folders = [root / "templates", *(p for p in root.glob("*/templates") if p.is_dir())]
    templates = [f for folder in folders for f in folder.rglob("*") if f.is_file()]
    assert len(templates) > 10 and any("crm/templates" in str(f) for f in templates)
    offenders = []
    for path in templates:
        relative = path.relative_to(root)
        if any(relative.match(pattern) for pattern in ESCAPING_OFF_ALLOWED):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ESCAPING_OFF.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
