import importlib

from django.db import migrations

from crm.db.audit import attach_audit

# Derived columns the customers trail leaves out (migration 0004): the score history records the scores.
EXCLUDED = ("lead_score", "engagement_score", "health_score", "scored_at", "updated_at")

# The searchable fields (customers.selectors.SEARCH_TEXT, migration 0005) and the tenant column.
_SEARCHABLE = ("organization_id", "first_name", "last_name", "email", "company_name", "phone")
_ROW = (
    "({row}.organization_id, {row}.first_name, {row}.last_name, {row}.email, {row}.company_name, {row}.phone)"
)
_TEXT = "lower(NEW.first_name || ' ' || NEW.last_name || ' ' || NEW.email || ' ' || NEW.company_name || ' ' || NEW.phone)"

# An UPDATE now keeps a customer's search terms with a row-level trigger that fires only when the UPDATE sets
# a searchable column (UPDATE OF) and one of them changed (WHEN). The statement-level trigger of 0005 had
# PostgreSQL capture every updated row twice (transition tables) and join them, for every UPDATE of
# customers, scoring included; and PostgreSQL refuses transition tables on a trigger with a column list.
ROW_TRIGGER = f"""
DROP TRIGGER IF EXISTS customer_search_terms_update ON customers;
DROP FUNCTION IF EXISTS customer_search_terms_update();

CREATE FUNCTION customer_search_terms_update_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_search_terms
    WHERE organization_id = OLD.organization_id AND customer_id = OLD.id;
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT NEW.organization_id, t.term, NEW.id FROM unnest(show_trgm({_TEXT})) AS t(term);
    RETURN NULL;
END;
$$;

CREATE TRIGGER customer_search_terms_update AFTER UPDATE OF {", ".join(_SEARCHABLE)} ON customers
    FOR EACH ROW WHEN ({_ROW.format(row="OLD")} IS DISTINCT FROM {_ROW.format(row="NEW")})
    EXECUTE FUNCTION customer_search_terms_update_row();
"""

# Back to 0005's statement-level trigger (its function as 0005 wrote it).
_0005 = importlib.import_module("customers.migrations.0005_search_terms")
STATEMENT_TRIGGER = f"""
DROP TRIGGER IF EXISTS customer_search_terms_update ON customers;
DROP FUNCTION IF EXISTS customer_search_terms_update_row();

CREATE FUNCTION customer_search_terms_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE {_0005._CHANGED}
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    DELETE FROM customer_search_terms s
    USING new_rows n JOIN old_rows o ON o.id = n.id
    WHERE {_0005._CHANGED} AND s.organization_id = o.organization_id AND s.customer_id = o.id;
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT c.organization_id, t.term, c.id
    FROM new_rows c JOIN old_rows o ON o.id = c.id
    CROSS JOIN LATERAL unnest(show_trgm({_0005._TEXT})) AS t(term)
    WHERE {_0005._CHANGED_C};
    RETURN NULL;
END;
$$;

CREATE TRIGGER customer_search_terms_update AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_search_terms_update();
"""


class Migration(migrations.Migration):
    """A first scoring of a whole organization writes every customers row: make those writes pay only for
    what they change. The audit trigger fires only for UPDATEs that set an audited column (scores are not),
    and the search-term trigger only for UPDATEs that change a searchable field (docs/benchmarks.md, "Lead
    scoring")."""

    dependencies = [("customers", "0006_duplicate_pairs")]

    operations = [
        migrations.RunSQL(
            'DROP TRIGGER IF EXISTS crm_audit ON "customers"',
            reverse_sql=attach_audit("customers", sensitivity="confidential", exclude=EXCLUDED).sql,
        ),
        attach_audit("customers", sensitivity="confidential", exclude=EXCLUDED, audited_columns_only=True),
        migrations.RunSQL([ROW_TRIGGER], reverse_sql=[STATEMENT_TRIGGER]),
    ]
