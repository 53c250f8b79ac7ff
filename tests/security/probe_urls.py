"""A URLconf for tests only: the project's URLs plus two probes that run inside the real middleware stack.

- `__fail__/` writes, then fails (an unhandled error that Django turns into a 500), to show that the write
  is rolled back and that the next request on the same connection starts clean;
- `__rls__/` answers what the database itself shows the request, through raw SQL that skips the
  application's own organization filter, so only row-level security stands between tenants.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import path

from crm.models import User
from crm.permissions import Capability, requires
from crm.urls import handler403, handler404, handler500
from crm.urls import urlpatterns as project_urlpatterns


@requires(Capability.EDIT_OWN_PROFILE)
def write_then_fail(request):
    User.objects.filter(pk=request.user.pk).update(first_name=request.POST.get("first_name", "Half-written"))
    raise RuntimeError("the view failed half-way")


@requires(Capability.VIEW_DASHBOARD)
def database_view(request):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('app.organization_id', true), current_setting('app.user_role', true),"
            " (SELECT array_agg(email ORDER BY email) FROM users),"
            " (SELECT array_agg(DISTINCT organization_id::text) FROM crm_audit_log)"
        )
        organization_id, role, emails, audit_orgs = cursor.fetchone()
    return JsonResponse(
        {
            "organization_id": organization_id,
            "role": role,
            "emails": emails or [],
            "audit_orgs": audit_orgs or [],
        }
    )


urlpatterns = [
    path("__fail__/", write_then_fail),
    path("__rls__/", database_view),
    *project_urlpatterns,
]

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
