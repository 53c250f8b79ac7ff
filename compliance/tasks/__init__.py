"""Background work of the compliance app: thin tasks that take primary keys and call one service.

Celery finds tasks in `compliance.tasks`; each area keeps its own module here, imported below. TenantTasks
are called with `organization_id=` and run inside that organization's tenant context; SystemTasks run as
the platform. Every task is idempotent.
"""

from compliance.tasks.maintenance import *  # noqa: F403
from compliance.tasks.requests import *  # noqa: F403
