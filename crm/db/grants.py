"""What the app role may do, granted after every `migrate` (run as the owner role).

Data access on every table and sequence in `public`; on the audit and access logs only SELECT and INSERT
(it can never rewrite history); nothing at all on partitions (rows are reached through their parent, whose policies
apply) nor on materialized views (they carry no row-level security: the app reads them through a view that
filters on the tenant setting, e.g. `sales_dashboard`); EXECUTE on the narrow SECURITY DEFINER functions it
needs.
"""

import logging

from django.db import connections
from psycopg import sql

from crm.db.owner import app_role_name

logger = logging.getLogger(__name__)

APPEND_ONLY_TABLES = ("crm_audit_log", "data_access_log")
APP_FUNCTIONS = (
    "crm_ensure_month_partitions(regclass, integer, integer)",
    "crm_login_user_id(text)",
    "crm_refresh_sales_dashboard()",
    "crm_audit_redact(text, text[], text[], jsonb)",
    "crm_drop_month_partition(regclass, date)",
)


def grant_app_role(*, using: str) -> None:
    connection = connections[using]
    app_role = app_role_name(using)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
        if current == app_role:
            logger.warning(
                "migrate ran as the app role %s itself: set DATABASE_OWNER_URL to a separate owner role "
                "(python -m crm.db.roles creates both); check_rls will fail until then.",
                app_role,
            )
            return
        role = sql.Identifier(app_role)
        statements = [
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(role),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role),
        ]
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
        for (partition,) in cursor.fetchall():
            statements.append(
                sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(partition), role)
            )
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'm'"
        )
        for (matview,) in cursor.fetchall():
            statements.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(matview), role))
        for table in APPEND_ONLY_TABLES:
            statements.append(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {} FROM {}").format(
                    sql.Identifier(table), role
                )
            )
        for function in APP_FUNCTIONS:
            cursor.execute("SELECT to_regprocedure(%s)", [function])
            if cursor.fetchone()[0] is None:  # its app is not migrated (yet, or any more)
                continue
            statements.append(sql.SQL("GRANT EXECUTE ON FUNCTION " + function + " TO {}").format(role))
        for statement in statements:
            cursor.execute(statement.as_string(connection.connection))
