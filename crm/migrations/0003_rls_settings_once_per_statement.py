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
                 AND (strpos(qual, {old_org}) > 0 OR strpos(with_check, {old_org}) > 0) LOOP
        IF pol.qual IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I USING (%s)', pol.policyname, pol.tablename,
                           replace(replace(pol.qual, {old_org}, {new_org}), {old_role}, {new_role}));
        END IF;
        IF pol.with_check IS NOT NULL THEN
            EXECUTE format('ALTER POLICY %I ON public.%I WITH CHECK (%s)', pol.policyname, pol.tablename,
                           replace(replace(pol.with_check, {old_org}, {new_org}), {old_role}, {new_role}));
        END IF;
    END LOOP;
END
$rewrite$;
"""


def _rewrite(forward: bool) -> str:
    names = {"old_org": "old_org", "new_org": "new_org", "old_role": "old_role", "new_role": "new_role"}
    if not forward:  # back to the per-row form: the same replacement the other way round
        names = {"old_org": "new_org", "new_org": "old_org", "old_role": "new_role", "new_role": "old_role"}
    return _REWRITE.format(**names)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_user_email_signature"),
        ("customers", "0010_consent_columns_db_default"),
        ("sales", "0003_opportunity_source_campaign_fk"),
        ("support", "0002_sla_warnings"),
        ("marketing", "0003_campaign_materialize_slices"),
        ("compliance", "0002_anonymization_runs"),
    ]

    operations = [migrations.RunSQL(sql=_rewrite(True), reverse_sql=_rewrite(False))]
