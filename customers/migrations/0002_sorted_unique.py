from django.db import migrations

SORTED_UNIQUE = """
CREATE OR REPLACE FUNCTION crm_sorted_unique(values_in text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(array_agg(DISTINCT v ORDER BY v), '{}') FROM unnest(values_in) AS v $$;
"""


class Migration(migrations.Migration):
    """Tags are kept sorted and unique; set-based tag changes use this to stay that way."""

    dependencies = [("customers", "0001_initial")]

    operations = [
        migrations.RunSQL(SORTED_UNIQUE, reverse_sql="DROP FUNCTION IF EXISTS crm_sorted_unique(text[])"),
    ]
