"""A task for the real Celery worker of test_celery.py, imported by that worker with `-I tests.crm.worker_tasks`.

It lives with the tests, not in the app: it only reports, through a notification, which tenant context the
worker ran it in and which organizations' users that context could see.
"""

import json

from crm.celery import TenantTask
from crm.celery import app as celery_app


@celery_app.task(base=TenantTask, name="tests.crm.report_tenant", ignore_result=True)
def report_tenant(recipient_id: str, marker: str) -> None:
    from crm import tenancy
    from crm.models import Notification, User

    state = tenancy.current()
    visible = sorted({str(org) for org in User.objects.values_list("organization_id", flat=True)})
    recipient = User.objects.get(pk=recipient_id)  # found only inside the recipient's organization
    Notification.objects.create(
        organization_id=state.organization_id,
        recipient=recipient,
        title=marker,
        body=json.dumps({"organization_id": str(state.organization_id), "visible": visible}),
    )
