"""Fail (exit 1) when tenant isolation could be bypassed.

- every table with an `organization_id` column (found in the catalog, partitions included) must have row-
  level security enabled *and* forced, and at least one policy;
- the role the app connects as must not be superuser, must not have BYPASSRLS, must own no table and must
  not be a member of a role that owns one (it could switch to it and turn RLS off);
- the app role must not be able to read any materialized view (they carry no row-level security: the app
  reads them through a view that filters on the tenant setting, e.g. `sales_dashboard`).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

TENANT_TABLES_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id'
              AND NOT a.attisdropped)
ORDER BY c.relname
"""
ROLE_SQL = "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
OWNED_SQL = """
SELECT c.relname, pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND pg_has_role(current_user, c.relowner, 'USAGE')
ORDER BY 1
"""

READABLE_MATVIEWS_SQL = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'm' AND has_table_privilege(current_user, c.oid, 'SELECT')
ORDER BY 1
"""


def rls_problems() -> tuple[list[str], int]:
    """(problems, number of tenant tables checked)."""
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(TENANT_TABLES_SQL)
        tables = cursor.fetchall()
        for name, enabled, forced, policies in tables:
            if not enabled:
                problems.append(f"{name}: row-level security is not enabled")
            if not forced:
                problems.append(f"{name}: row-level security is not forced (the owner would bypass it)")
            if not policies:
                problems.append(f"{name}: no policy")
        cursor.execute(ROLE_SQL)
        role, superuser, bypass = cursor.fetchone()
        if superuser:
            problems.append(f"role {role} is a superuser")
        if bypass:
            problems.append(f"role {role} has BYPASSRLS")
        cursor.execute(OWNED_SQL)
        for table, owner in cursor.fetchall():
            problems.append(f"role {role} owns (or can act as the owner {owner} of) {table}")
        cursor.execute(READABLE_MATVIEWS_SQL)
        for (matview,) in cursor.fetchall():
            problems.append(
                f"role {role} can read the materialized view {matview} (it has no row-level security)"
            )
    return problems, len(tables)


class Command(BaseCommand):
    help = (
        "Exit non-zero when any tenant table lacks forced row-level security or the app role could bypass it."
    )

    def handle(self, *args, **options):
        problems, checked = rls_problems()
        if problems:
            for problem in problems:
                self.stderr.write(f"  - {problem}")
            raise CommandError(f"Tenant isolation check failed: {len(problems)} problem(s).")
        self.stdout.write(
            self.style.SUCCESS(
                f"{checked} tenant tables have forced RLS with a policy; the app role cannot bypass it."
            )
        )
