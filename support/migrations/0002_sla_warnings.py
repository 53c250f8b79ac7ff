"""The half-time instants of the SLA targets, stored for the escalation sweep (support/escalation.py),
with partial indexes on the running tickets (active, not paused) that the sweep selects from."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="first_response_warn_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="ticket",
            name="resolution_warn_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("first_response_at__isnull", True),
                    ("sla_paused_since__isnull", True),
                    models.Q(("status__in", ["resolved", "closed"]), _negated=True),
                ),
                fields=["organization", "first_response_warn_at"],
                name="tickets_sla_fr_warn_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("sla_paused_since__isnull", True),
                    models.Q(("status__in", ["resolved", "closed"]), _negated=True),
                ),
                fields=["organization", "resolution_warn_at"],
                name="tickets_sla_res_warn_idx",
            ),
        ),
    ]
