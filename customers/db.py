"""Hand-written SQL of the customers migrations: the partitioned interaction log."""

from crm.db.rls import tenant_predicate

CREATE_INTERACTION_LOGS = f"""
CREATE TABLE interaction_logs (
    id uuid NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    customer_id uuid NOT NULL,
    interaction_date timestamptz NOT NULL,
    interaction_type varchar(24) NOT NULL,
    channel varchar(12) NOT NULL DEFAULT '',
    outcome varchar(200) NOT NULL DEFAULT '',
    sentiment varchar(10) NOT NULL DEFAULT '',
    campaign_id uuid NULL,
    notes text NOT NULL DEFAULT '',
    logged_by_id uuid NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, interaction_date),
    -- A customer of another organization can never be referenced (composite tenant key); deleting a
    -- customer (a merge, an erasure) takes its interactions with it unless they were moved first.
    CONSTRAINT interaction_logs_customer_tenant_fk FOREIGN KEY (organization_id, customer_id)
        REFERENCES customers (organization_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT interaction_logs_logged_by_tenant_fk FOREIGN KEY (organization_id, logged_by_id)
        REFERENCES users (organization_id, id) ON DELETE SET NULL (logged_by_id) DEFERRABLE INITIALLY DEFERRED
) PARTITION BY RANGE (interaction_date);
CREATE INDEX interaction_logs_customer_idx ON interaction_logs (organization_id, customer_id, interaction_date DESC, id DESC);
CREATE INDEX interaction_logs_type_idx ON interaction_logs (organization_id, interaction_type, interaction_date DESC);
ALTER TABLE interaction_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE interaction_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON interaction_logs USING ({tenant_predicate()}) WITH CHECK ({tenant_predicate()});
"""
