from django.db import migrations

from crm.db.rls import enable_rls

# The searchable text, lower-cased, as one expression of a customers row aliased `c` (the same fields, in the
# same order, as customers.selectors.SEARCH_TEXT). show_trgm() returns each trigram once.
_TEXT = (
    "lower(c.first_name || ' ' || c.last_name || ' ' || c.email || ' ' || c.company_name || ' ' || c.phone)"
)
_FIELDS = "({a}.organization_id, {a}.first_name, {a}.last_name, {a}.email, {a}.company_name, {a}.phone)"
# Whether an updated row's searchable text changed (n/c: the new row, o: the old one).
_CHANGED = f"{_FIELDS.format(a='n')} IS DISTINCT FROM {_FIELDS.format(a='o')}"
_CHANGED_C = f"{_FIELDS.format(a='c')} IS DISTINCT FROM {_FIELDS.format(a='o')}"

CREATE_TABLE = """
CREATE TABLE customer_search_terms (
    organization_id uuid NOT NULL,
    term text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (organization_id, term, customer_id),
    CONSTRAINT customer_search_terms_customer_tenant_fk FOREIGN KEY (organization_id, customer_id)
        REFERENCES customers (organization_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX customer_search_terms_customer_idx ON customer_search_terms (organization_id, customer_id);
"""

# Statement-level triggers with transition tables: one set-based statement per INSERT/UPDATE of customers,
# whatever the number of rows (the CSV import inserts 50,000 at once, scoring updates 100,000). An UPDATE
# that changes no searchable field (scoring, lifecycle, tags ...) joins old and new rows and writes nothing.
# Deletes cascade through the foreign key. SECURITY INVOKER: the writes run under the caller's RLS policy,
# which already admits the caller's own organization's rows.
CREATE_TRIGGERS = f"""
CREATE FUNCTION customer_search_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT c.organization_id, t.term, c.id
    FROM new_rows c CROSS JOIN LATERAL unnest(show_trgm({_TEXT})) AS t(term);
    RETURN NULL;
END;
$$;

CREATE FUNCTION customer_search_terms_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The common case (scoring, lifecycle, tags): nothing searchable changed, one join and out.
    PERFORM 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE {_CHANGED}
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    DELETE FROM customer_search_terms s
    USING new_rows n JOIN old_rows o ON o.id = n.id
    WHERE {_CHANGED} AND s.organization_id = o.organization_id AND s.customer_id = o.id;
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT c.organization_id, t.term, c.id
    FROM new_rows c JOIN old_rows o ON o.id = c.id
    CROSS JOIN LATERAL unnest(show_trgm({_TEXT})) AS t(term)
    WHERE {_CHANGED_C};
    RETURN NULL;
END;
$$;

CREATE TRIGGER customer_search_terms_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_search_terms_insert();
CREATE TRIGGER customer_search_terms_update AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_search_terms_update();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS customer_search_terms_update ON customers;
DROP TRIGGER IF EXISTS customer_search_terms_insert ON customers;
DROP FUNCTION IF EXISTS customer_search_terms_update();
DROP FUNCTION IF EXISTS customer_search_terms_insert();
"""

# The migration runs as the owner role, to which the forced policy applies too: the backfill reads and
# writes every organization's rows as the platform.
BACKFILL = f"""
SELECT set_config('app.user_role', 'system_admin', true);
INSERT INTO customer_search_terms (organization_id, term, customer_id)
SELECT c.organization_id, t.term, c.id
FROM customers c CROSS JOIN LATERAL unnest(show_trgm({_TEXT})) AS t(term);
"""


class Migration(migrations.Migration):
    """Search terms: the trigrams of each customer's searchable text, one row each, so the list's search can
    pick candidates with `=` — leakproof, hence served by an index under forced row-level security, which
    pg_trgm's operators are not (docs/customers.md, "Known limits")."""

    dependencies = [("customers", "0004_audit_without_scores")]

    operations = [
        migrations.RunSQL(CREATE_TABLE, reverse_sql="DROP TABLE IF EXISTS customer_search_terms"),
        enable_rls("customer_search_terms"),
        migrations.RunSQL(CREATE_TRIGGERS, reverse_sql=DROP_TRIGGERS),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
