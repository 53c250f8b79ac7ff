"""Background work of the marketing app: thin tasks that take primary keys and call one service.

Celery finds tasks in `marketing.tasks`; each area keeps its own module here, imported below. TenantTasks
are called with `organization_id=` and run inside that organization's tenant context; SystemTasks run as
the platform. Every task is idempotent.
"""

from marketing.tasks.abtests import *  # noqa: F403
from marketing.tasks.sends import *  # noqa: F403
from marketing.tasks.sequences import *  # noqa: F403
