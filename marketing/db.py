"""Hand-written SQL of the marketing migrations: the partitioned `email_sends` table and the campaign
foreign keys of interactions.

One email per recipient, enforced by the database although `email_sends` is partitioned (its unique keys
must include the partition key `scheduled_send_time`):

- a campaign send row carries the campaign's frozen `send_at` in `blast_at`, which must equal its
  `scheduled_send_time`, and (organization_id, campaign_id, blast_at) references campaigns
  (organization_id, id, send_at): all rows of one campaign share one scheduled time, so the unique key
  (organization_id, campaign_id, customer_id, scheduled_send_time) is in effect unique per (campaign,
  customer);
- a sequence email references its step run by (organization_id, step_run_id, scheduled_send_time) ->
  sequence_step_runs (organization_id, id, due_at) and is unique on (organization_id, step_run_id,
  scheduled_send_time): one email per step run, and a step run is unique per (enrollment, step).
"""

from crm.db.rls import tenant_predicate

CREATE_EMAIL_SENDS = f"""
CREATE TABLE email_sends (
    id uuid NOT NULL,
    -- No foreign key of its own: the campaign keys below lead with it (and cascade from the organization's
    -- campaigns), so a separate check per row would only repeat theirs (materialization writes 1M rows).
    organization_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    variant_id uuid NULL,
    step_run_id uuid NULL,
    blast_at timestamptz NULL,
    scheduled_send_time timestamptz NOT NULL,
    email varchar(254) NOT NULL,
    status varchar(10) NOT NULL DEFAULT 'queued',
    in_test boolean NOT NULL DEFAULT false,
    attempts smallint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    message_id varchar(255) NOT NULL DEFAULT '',
    queued_at timestamptz NULL,
    sent_at timestamptz NULL,
    delivered_at timestamptz NULL,
    opened_at timestamptz NULL,
    open_count integer NOT NULL DEFAULT 0 CHECK (open_count >= 0),
    clicked_at timestamptz NULL,
    click_count integer NOT NULL DEFAULT 0 CHECK (click_count >= 0),
    bounced_at timestamptz NULL,
    complained_at timestamptz NULL,
    unsubscribed_at timestamptz NULL,
    failed_at timestamptz NULL,
    error varchar(500) NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The campaign of a sequence email (NULL on a campaign send row, whose blast key already names the
    -- campaign): the target of its own foreign key, so each row pays one campaign check, not two.
    sequence_campaign_id uuid GENERATED ALWAYS AS (CASE WHEN step_run_id IS NOT NULL THEN campaign_id END) STORED,
    PRIMARY KEY (id, scheduled_send_time),
    CONSTRAINT email_sends_status_ck CHECK (
        status IN ('held', 'queued', 'sending', 'sent', 'delivered', 'bounced', 'failed', 'skipped')),
    -- Exactly one of: a campaign send (blast_at set, equal to the partition key) or a sequence email.
    CONSTRAINT email_sends_kind_ck CHECK ((step_run_id IS NULL) = (blast_at IS NOT NULL)),
    CONSTRAINT email_sends_blast_at_ck CHECK (blast_at IS NULL OR blast_at = scheduled_send_time),
    CONSTRAINT email_sends_campaign_tenant_fk FOREIGN KEY (organization_id, sequence_campaign_id)
        REFERENCES campaigns (organization_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT email_sends_blast_fk FOREIGN KEY (organization_id, campaign_id, blast_at)
        REFERENCES campaigns (organization_id, id, send_at) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT email_sends_customer_tenant_fk FOREIGN KEY (organization_id, customer_id)
        REFERENCES customers (organization_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT email_sends_variant_tenant_fk FOREIGN KEY (organization_id, variant_id)
        REFERENCES campaign_variants (organization_id, id) ON DELETE SET NULL (variant_id)
        DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT email_sends_step_run_fk FOREIGN KEY (organization_id, step_run_id, scheduled_send_time)
        REFERENCES sequence_step_runs (organization_id, id, due_at) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED
) PARTITION BY RANGE (scheduled_send_time);
CREATE UNIQUE INDEX email_sends_recipient_key ON email_sends
    (organization_id, campaign_id, customer_id, scheduled_send_time) WHERE step_run_id IS NULL;
CREATE UNIQUE INDEX email_sends_step_run_key ON email_sends
    (organization_id, step_run_id, scheduled_send_time) WHERE step_run_id IS NOT NULL;
CREATE INDEX email_sends_campaign_status_idx ON email_sends (organization_id, campaign_id, status);
CREATE INDEX email_sends_customer_idx ON email_sends (organization_id, customer_id, scheduled_send_time DESC);
CREATE INDEX email_sends_message_idx ON email_sends (message_id) WHERE message_id <> '';
ALTER TABLE email_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_sends FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_sends USING ({tenant_predicate()}) WITH CHECK ({tenant_predicate()});
"""

DROP_EMAIL_SENDS = "DROP TABLE IF EXISTS email_sends CASCADE"

# interaction_logs.campaign_id and opportunities.source_campaign_id become real (tenant) foreign keys.
INTERACTION_CAMPAIGN_FK = """
ALTER TABLE interaction_logs ADD CONSTRAINT interaction_logs_campaign_tenant_fk
    FOREIGN KEY (organization_id, campaign_id) REFERENCES campaigns (organization_id, id)
    ON DELETE SET NULL (campaign_id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX interaction_logs_campaign_idx ON interaction_logs (organization_id, campaign_id, interaction_date)
    WHERE campaign_id IS NOT NULL;
"""
DROP_INTERACTION_CAMPAIGN_FK = """
DROP INDEX IF EXISTS interaction_logs_campaign_idx;
ALTER TABLE interaction_logs DROP CONSTRAINT IF EXISTS interaction_logs_campaign_tenant_fk;
"""
