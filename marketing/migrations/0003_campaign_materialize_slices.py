import django.contrib.postgres.fields
from django.db import migrations, models

from crm.db.audit import attach_audit

# migration 0001's list: counters and send progress, which change with every email and open.
EXCLUDED = (
    "updated_at",
    "send_state",
    "send_started_at",
    "send_finished_at",
    "send_error",
    "recipients_total",
    "sent_count",
    "delivered_count",
    "bounced_count",
    "failed_count",
    "opened_count",
    "clicked_count",
    "unsubscribed_count",
    "complained_count",
    "impressions",
    "clicks",
    "conversions",
    "actual_cost",
)
NEW = ("materialize_bounds", "materialized_slices")


class Migration(migrations.Migration):
    """The materialization's slices on the campaign (marketing/sending.py): the bounds planned once per send
    and the slices written. Send progress, like the counters, so the audit trigger (attached with its
    column list) is attached again leaving them out."""

    dependencies = [
        ("marketing", "0002_send_scheduled_and_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="materialize_bounds",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.UUIDField(), blank=True, editable=False, null=True, size=None
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="materialized_slices",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.PositiveIntegerField(), blank=True, default=list, editable=False, size=None
            ),
        ),
        migrations.RunSQL(
            'DROP TRIGGER IF EXISTS crm_audit ON "campaigns"',
            # Going back: the old list, which must not name the columns about to be dropped.
            reverse_sql=attach_audit("campaigns", audited_columns_only=True, exclude=EXCLUDED + NEW).sql,
        ),
        attach_audit("campaigns", audited_columns_only=True, exclude=EXCLUDED + NEW),
    ]
