"""Every tenant policy reads its settings in scalar sub-selects (crm/db/rls.py): evaluated once per statement
instead of once per row. Same meaning; databases migrated before keep the policies they had until this
rewrites them, partitions included (new partitions copy their parent's policies, so they follow).

The patterns are the policies' text as PostgreSQL prints it back (`pg_policies`), before and after, so the
rewrite and its reverse are exact replacements. A database created after the helper changed already has the
new form: the old text is not found and nothing is altered. Runs after every app's migrations that create
policies.
"""

from django.db import migrations

_REWRITE = r"""
DO $rewrite$
DECLARE
    pol record;
    old_org text := $t$= (NULLIF(current_setting('app.organization_id'::text, true), ''::text))::uuid$t$;
    new_org text := $t$= ( SELECT (NULLIF(current_setting('app.organization_id'::text, true), ''::text))::uuid AS "nullif")$t$;
    old_role text := $t$OR (current_setting('app.user_role'::text, true) = 'system_admin'::text)$t$;
    new_role text := $t$OR (( SELECT current_setting('app.user_role'::text, true) AS current_setting) = 'system_admin'::text)$t$;
BEGIN
    FOR pol IN SELECT tablename, policyname, qual, with_check FROM pg_policies
               WHERE schemaname = 'public'
                 AND (strpos(qual, {from_org}) > 0 OR strpos(with_check, {from_org}) > 0) LOOP
        IF pol.qual IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I USING (%s)', pol.policyname, pol.tablename,
                           replace(replace(pol.qual, {from_org}, {to_org}), {from_role}, {to_role}));
        END IF;
        IF pol.with_check IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I WITH CHECK (%s)', pol.policyname, pol.tablename,
                           replace(replace(pol.with_check, {from_org}, {to_org}), {from_role}, {to_role}));
        END IF;
    END LOOP;
END
$rewrite$;
"""


def _rewrite(source: str, target: str) -> str:
    """Replace the `source` form by the `target` form ("old" or "new": the variables declared above)."""
    return _REWRITE.format(
        from_org=f"{source}_org", to_org=f"{target}_org", from_role=f"{source}_role", to_role=f"{target}_role"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_user_email_signature"),
        ("customers", "0010_consent_columns_db_default"),
        ("sales", "0003_opportunity_source_campaign_fk"),
        ("support", "0002_sla_warnings"),
        ("marketing", "0003_campaign_materialize_slices"),
        ("compliance", "0002_anonymization_runs"),
    ]

    operations = [migrations.RunSQL(sql=_rewrite("old", "new"), reverse_sql=_rewrite("new", "old"))]
