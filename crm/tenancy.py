"""Tenant context: who is acting, for which organization, set transaction-locally in PostgreSQL.

Row-level security policies read `app.organization_id` and `app.user_role` (and the audit trigger reads
`app.user_id`, `app.request_id`, `app.ip_address`, `app.user_agent`). They are always set with
`set_config(..., is_local => true)`, inside a transaction, so they vanish at COMMIT or ROLLBACK and a pooled
connection never carries one request's tenant into the next. Never use a session-level `SET`.

Three ways in:
- `TenantMiddleware` opens the transaction that runs the view *and* renders the response;
- `tenant_context(org_id)` for tasks, commands and the shell;
- `system_context()` for platform work across organizations (the `system_admin` role of the policies).

Outside all of them, a query through a tenant model's manager raises `TenantContextError` rather than
quietly returning nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from django.db import connection, models, transaction

SYSTEM_ADMIN = "system_admin"


class TenantContextError(RuntimeError):
    """A tenant-scoped query or task ran with no tenant context."""


@dataclass(frozen=True)
class TenantState:
    """What the database is told about the current actor. `None` values are sent as empty strings."""

    organization_id: uuid.UUID | None = None
    role: str = ""
    user_id: uuid.UUID | None = None
    request_id: str = ""
    ip_address: str = ""
    user_agent: str = ""

    @property
    def is_system(self) -> bool:
        return self.role == SYSTEM_ADMIN


_current: ContextVar[TenantState | None] = ContextVar("crm_tenant_state", default=None)

_SET_SQL = (
    "SELECT set_config('app.organization_id', %s, true), set_config('app.user_role', %s, true),"
    " set_config('app.user_id', %s, true), set_config('app.request_id', %s, true),"
    " set_config('app.ip_address', %s, true), set_config('app.user_agent', %s, true)"
)
_EMPTY = TenantState()


def _send(state: TenantState) -> None:
    """Tell PostgreSQL about `state` for the rest of the current transaction (or savepoint)."""
    if not connection.in_atomic_block:
        raise TenantContextError("The tenant context must be set inside a transaction (transaction-local).")
    with connection.cursor() as cursor:
        cursor.execute(
            _SET_SQL,
            [
                str(state.organization_id or ""),
                state.role,
                str(state.user_id or ""),
                state.request_id,
                state.ip_address,
                state.user_agent[:512],
            ],
        )


def current() -> TenantState | None:
    """The active tenant state, or None outside every context."""
    return _current.get()


def require() -> TenantState:
    """The active tenant state; raises when there is none (fails loudly, never quietly sees nothing)."""
    state = _current.get()
    if state is None:
        raise TenantContextError(
            "No tenant context: wrap this in tenant_context(org_id) or system_context() "
            "(the request middleware does it for views)."
        )
    return state


def current_organization_id() -> uuid.UUID | None:
    return require().organization_id


@contextmanager
def _activated(state: TenantState) -> Iterator[TenantState]:
    with transaction.atomic():
        previous = _current.get()
        token = _current.set(state)
        _send(state)
        try:
            yield state
        except BaseException:
            # The atomic block rolls back to before `_send(state)`, which puts the previous settings back.
            # Sending anything here could fail in an aborted transaction and hide the original error.
            _current.reset(token)
            raise
        _current.reset(token)
        # set_config(..., true) lasts until the end of the *outermost* transaction; when this context is
        # nested in a longer transaction, put back what was there before (or nothing).
        if connection.in_atomic_block and not connection.needs_rollback:
            _send(previous or _EMPTY)


@contextmanager
def tenant_context(
    organization_id: uuid.UUID | str, *, user=None, role: str = "", request_id: str = ""
) -> Iterator[TenantState]:
    """Run the block in one transaction as `organization_id` (optionally as `user`, for the audit trail)."""
    if not organization_id:
        raise TenantContextError("tenant_context() needs an organization id.")
    state = TenantState(
        organization_id=uuid.UUID(str(organization_id)),
        role=role or getattr(user, "role", "") or "",
        user_id=getattr(user, "pk", None),
        request_id=request_id or f"ctx-{uuid.uuid4()}",
    )
    with _activated(state) as active:
        yield active


@contextmanager
def system_context(*, user=None, request_id: str = "") -> Iterator[TenantState]:
    """Run the block in one transaction as the platform (`system_admin`): sees every organization."""
    state = TenantState(
        role=SYSTEM_ADMIN, user_id=getattr(user, "pk", None), request_id=request_id or f"sys-{uuid.uuid4()}"
    )
    with _activated(state) as active:
        yield active


def state_for_user(user, *, base: TenantState | None = None) -> TenantState:
    """The tenant state that `user` acts under (anonymous: no organization, no role)."""
    base = base or _EMPTY
    if user is None or not user.is_authenticated:
        return replace(base, organization_id=None, role="", user_id=None)
    role = SYSTEM_ADMIN if user.is_superuser else user.role
    return replace(base, organization_id=user.organization_id, role=role, user_id=user.pk)


def activate_user(user) -> None:
    """Switch the current transaction to act as `user` (after login, or once the session user is known)."""
    state = state_for_user(user, base=require())
    _current.set(state)
    _send(state)


def set_session_user_id(user_id: str | None) -> None:
    """Let the users policy show the session's own row, so authentication can load it before the tenant
    (which is read from that very row) is known."""
    state = replace(require(), user_id=_uuid_or_none(user_id))
    _current.set(state)
    _send(state)


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


class TenantQuerySet(models.QuerySet):
    """A QuerySet that refuses to run without a tenant context."""

    def _fetch_all(self):
        require()
        super()._fetch_all()

    def iterator(self, chunk_size=None):
        require()
        return super().iterator(chunk_size=chunk_size)

    def count(self):
        require()
        return super().count()

    def exists(self):
        require()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        require()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        require()
        return super().update(**kwargs)

    def delete(self):
        require()
        return super().delete()

    def for_organization(self, organization_id) -> TenantQuerySet:
        """The first wall: filter by organization in the application too (RLS is the second)."""
        return self.filter(organization_id=organization_id)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    pass


class TenantMiddleware:
    """Open the request's transaction and set the tenant context for everything that runs inside it.

    The view and the rendering of its response run in one transaction, with the context set transaction-
    locally. A response of 500 or more (an unhandled exception was turned into a response further in)
    rolls the transaction back, so nothing half-written stays behind.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        base = TenantState(
            # The session's user id lets the users policy show that one row, so authentication can load
            # it before the tenant (which is read from that very row) is known.
            user_id=_uuid_or_none(request.session.get("_auth_user_id")),
            request_id=getattr(request, "request_id", ""),
            ip_address=getattr(request, "client_ip", "") or "",
            user_agent=request.headers.get("User-Agent", ""),
        )
        with _activated(base):
            # request.user is lazy: loading it here, inside the transaction, is what makes the above work.
            activate_user(request.user)
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
        return response
