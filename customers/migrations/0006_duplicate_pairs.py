from django.db import migrations

from crm.db.rls import add_tenant_foreign_key, enable_rls

# The likely duplicate pairs as the last refresh found them (customers.duplicates.refresh), and when each
# organization's pairs were last computed and last asked for. Derived tables without Django models, like
# customer_search_terms: only the refresh writes them, set-based; the page reads them with raw SQL.
#
# Every pair the rules find is kept, "not a duplicate" ones too: the page leaves dismissed pairs out when it
# reads (an anti-join on customer_duplicate_dismissals), so marking a pair, and undoing the mark, shows at
# once. Deleting a customer (merges delete the source) removes its pairs through the foreign keys.
CREATE_TABLES = """
CREATE TABLE customer_duplicate_pairs (
    organization_id uuid NOT NULL,
    customer_a_id uuid NOT NULL,
    customer_b_id uuid NOT NULL,
    same_email boolean NOT NULL,
    same_phone boolean NOT NULL,
    name_similarity double precision NULL,
    company_similarity double precision NULL,
    confidence smallint NOT NULL,
    computed_at timestamptz NOT NULL,
    CONSTRAINT customer_duplicate_pairs_key PRIMARY KEY (organization_id, customer_a_id, customer_b_id),
    CONSTRAINT customer_duplicate_pairs_order_ck CHECK (customer_a_id < customer_b_id),
    CONSTRAINT customer_duplicate_pairs_reason_ck CHECK (same_email OR same_phone OR name_similarity IS NOT NULL),
    CONSTRAINT customer_duplicate_pairs_confidence_ck CHECK (confidence BETWEEN 0 AND 100)
);
-- The page's order (most certain first, then by ids, all descending so a keyset cursor is one row
-- comparison, i.e. one index range); the cascade from customers needs customer_b_id too.
CREATE INDEX customer_duplicate_pairs_page_idx
    ON customer_duplicate_pairs (organization_id, confidence DESC, customer_a_id DESC, customer_b_id DESC);
CREATE INDEX customer_duplicate_pairs_b_idx ON customer_duplicate_pairs (organization_id, customer_b_id);

CREATE TABLE customer_duplicate_runs (
    organization_id uuid NOT NULL PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    computed_at timestamptz NULL,
    requested_at timestamptz NULL,
    pair_count integer NOT NULL DEFAULT 0,
    duration_ms integer NOT NULL DEFAULT 0
);
"""

DROP_TABLES = """
DROP TABLE IF EXISTS customer_duplicate_runs;
DROP TABLE IF EXISTS customer_duplicate_pairs;
"""


class Migration(migrations.Migration):
    """Duplicates from a precomputed table: the pairs, refreshed hourly by beat and on demand, instead of
    recomputed on every page load (docs/customers.md, "Duplicates and merge")."""

    dependencies = [("customers", "0005_search_terms")]

    operations = [
        migrations.RunSQL(CREATE_TABLES, reverse_sql=DROP_TABLES),
        enable_rls("customer_duplicate_pairs"),
        enable_rls("customer_duplicate_runs"),
        add_tenant_foreign_key("customer_duplicate_pairs", "customer_a_id", "customers", on_delete="CASCADE"),
        add_tenant_foreign_key("customer_duplicate_pairs", "customer_b_id", "customers", on_delete="CASCADE"),
    ]
