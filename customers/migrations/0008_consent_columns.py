from django.db import migrations, models

from crm.db.audit import attach_audit

# migration 0007's list: derived columns the customers trail leaves out.
EXCLUDED = ("lead_score", "engagement_score", "health_score", "scored_at", "updated_at")


class Migration(migrations.Migration):
    """The current consent per purpose on the customer row (the latest consent record's answer, written by
    compliance.services.consent), so audience and scoring filters stay plain indexed predicates. The audit
    trigger lists its columns (audited_columns_only), so it is attached again to cover the new ones."""

    dependencies = [("customers", "0007_scoring_skips_audit_and_search_triggers")]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="profiling_allowed",
            field=models.BooleanField(default=True, verbose_name="profiling allowed"),
        ),
        migrations.AddField(
            model_name="customer",
            name="sale_allowed",
            field=models.BooleanField(default=True, verbose_name="sale of data allowed"),
        ),
        migrations.AddField(
            model_name="customer",
            name="sharing_allowed",
            field=models.BooleanField(default=True, verbose_name="sharing of data allowed"),
        ),
        migrations.RunSQL(
            'DROP TRIGGER IF EXISTS crm_audit ON "customers"',
            reverse_sql=attach_audit(
                "customers", sensitivity="confidential", exclude=EXCLUDED, audited_columns_only=True
            ).sql,
        ),
        attach_audit("customers", sensitivity="confidential", exclude=EXCLUDED, audited_columns_only=True),
    ]
