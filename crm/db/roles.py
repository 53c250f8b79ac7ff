"""Provision the PostgreSQL roles and database the CRM expects (ARCHITECTURE.md section 4, third wall).

Two roles, neither a member of the other:

- the *owner* role (``crm_owner``) owns the database and schema ``public``; migrations run as it. It may
  create databases (the test runner needs that) but it is not a superuser and cannot bypass RLS;
- the *app* role (``crm_app``) is what the running application connects as: not superuser, not
  ``BYPASSRLS``, owns nothing, cannot create objects in ``public``. Table privileges are granted to it by
  the migrations that create the tables.

This module has no Django imports: it runs before settings are loaded (``crm.devstack`` calls it, and so
does an operator setting up a real server)::

    python -m crm.db.roles --admin-url postgres://postgres@127.0.0.1:5432/postgres

Everything is idempotent: rerunning creates what is missing and (re)sets both passwords.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import sys
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

logger = logging.getLogger(__name__)

OWNER_ATTRS = "LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOBYPASSRLS"
APP_ATTRS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"


def _ensure_role(cur: psycopg.Cursor, name: str, attrs: str, password: str) -> None:
    """Create the role, or bring an existing one to the wanted attributes and password."""
    options = sql.SQL(attrs + " PASSWORD {}").format(sql.Literal(password))
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    if cur.fetchone() is None:
        try:
            cur.execute(sql.SQL("CREATE ROLE {} WITH ").format(sql.Identifier(name)) + options)
            return
        except psycopg.errors.DuplicateObject:
            pass  # another provisioner created it between our SELECT and CREATE: fall through to ALTER
    cur.execute(sql.SQL("ALTER ROLE {} WITH ").format(sql.Identifier(name)) + options)


def _ensure_database(cur: psycopg.Cursor, database: str, owner: str) -> None:
    cur.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
        (database,),
    )
    row = cur.fetchone()
    if row is None:
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent provisioner won the race
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner))
            )
    elif row[0] != owner:
        # Left alone on purpose (it may be shared); migrations still work through the schema ownership
        # below, but CREATE EXTENSION needs CREATE on the database.
        logger.warning("database %r already exists and is owned by %r, not %r", database, row[0], owner)


def _url(user: str, password: str, host: str | None, port: str | None, database: str) -> str:
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    query = ""
    if host and host.startswith("/"):  # unix-socket directory: libpq takes it as a query parameter
        query = f"?host={quote(host, safe='/')}"
    elif host:
        netloc += f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"postgres://{netloc}/{quote(database, safe='')}{query}"


def provision(
    *,
    admin_url: str,
    database: str = "crm",
    owner: str = "crm_owner",
    owner_password: str,
    app: str = "crm_app",
    app_password: str,
    host_for_urls: str | None = None,
) -> dict[str, str]:
    """Create/update both roles and the database; return ``DATABASE_URL`` and ``DATABASE_OWNER_URL``.

    ``admin_url`` must be a role allowed to create roles and databases (normally a superuser). The returned
    URLs use its host and port unless ``host_for_urls`` overrides the host.
    """
    if owner == app:
        raise ValueError("the owner and app roles must be different roles")
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        _ensure_role(cur, owner, OWNER_ATTRS, owner_password)
        _ensure_role(cur, app, APP_ATTRS, app_password)
        _ensure_database(cur, database, owner)
        grant = sql.SQL("GRANT CONNECT ON DATABASE {} TO {}")
        cur.execute(grant.format(sql.Identifier(database), sql.Identifier(app)))
    with psycopg.connect(admin_url, dbname=database, autocommit=True) as conn, conn.cursor() as cur:
        # PostgreSQL < 15 lets every role create objects in public; take that away everywhere.
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(app)))

    params = conninfo_to_dict(admin_url)
    host = host_for_urls or params.get("host") or "localhost"
    port = params.get("port")
    return {
        "DATABASE_URL": _url(app, app_password, host, port, database),
        "DATABASE_OWNER_URL": _url(owner, owner_password, host, port, database),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm.db.roles",
        description=(
            "Create or update the CRM's owner role (migrations) and app role (runtime, no RLS bypass) and "
            "its database on an existing PostgreSQL server, then print DATABASE_URL and DATABASE_OWNER_URL "
            "lines for .env or `export`. Idempotent; note that every run (re)sets both passwords."
        ),
    )
    parser.add_argument(
        "--admin-url",
        required=True,
        help="URL of a role that may create roles and databases, e.g. postgres://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--database", default="crm", help="database to create (default: %(default)s)")
    parser.add_argument("--owner", default="crm_owner", help="owner/migration role (default: %(default)s)")
    parser.add_argument("--app", default="crm_app", help="runtime role (default: %(default)s)")
    parser.add_argument("--owner-password", help="default: a freshly generated random password")
    parser.add_argument("--app-password", help="default: a freshly generated random password")
    parser.add_argument("--host-for-urls", help="host to put in the printed URLs (default: the admin URL's)")
    args = parser.parse_args(argv)

    try:
        urls = provision(
            admin_url=args.admin_url,
            database=args.database,
            owner=args.owner,
            owner_password=args.owner_password or secrets.token_urlsafe(24),
            app=args.app,
            app_password=args.app_password or secrets.token_urlsafe(24),
            host_for_urls=args.host_for_urls,
        )
    except psycopg.OperationalError as exc:
        print(f"error: cannot connect to PostgreSQL with --admin-url: {exc}".rstrip(), file=sys.stderr)
        return 2
    except (psycopg.Error, ValueError) as exc:
        print(f"error: provisioning failed: {exc}".rstrip(), file=sys.stderr)
        return 1
    for key, value in urls.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s: %(message)s")
    sys.exit(main())
