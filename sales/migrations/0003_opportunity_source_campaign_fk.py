"""opportunities.source_campaign_id becomes a real foreign key to the campaign (composite tenant key).

The column keeps its name and its data: only Django's state changes from a UUIDField to a ForeignKey; the
database gains the (organization_id, source_campaign_id) constraint and index."""

import django.db.models.deletion
from django.db import migrations, models

from crm.db.rls import add_tenant_foreign_key


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0001_initial"),
        ("sales", "0002_sales_dashboard"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="opportunity", name="source_campaign_id"),
                migrations.AddField(
                    model_name="opportunity",
                    name="source_campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="sourced_opportunities",
                        to="marketing.campaign",
                        verbose_name="source campaign",
                    ),
                ),
            ],
            database_operations=[
                add_tenant_foreign_key(
                    "opportunities",
                    "source_campaign_id",
                    "campaigns",
                    on_delete="SET NULL (source_campaign_id)",
                ),
                migrations.RunSQL(
                    "CREATE INDEX opportunities_source_campaign_idx ON opportunities "
                    "(organization_id, source_campaign_id) WHERE source_campaign_id IS NOT NULL",
                    reverse_sql="DROP INDEX IF EXISTS opportunities_source_campaign_idx",
                ),
            ],
        )
    ]
