"""Signal handlers of the platform app."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import Signal, receiver

from crm import tenancy

# Sent by crm.services.user_deactivate inside its transaction (kwargs: user, actor), so domain apps can hand
# the person's open work to others (support re-routes their tickets) without the platform importing them.
user_deactivated = Signal()
# Sent by the audit viewer when someone opens an entry (kwargs: request, entry): its old and new values may
# hold a customer's personal data, so compliance records the view in its access log.
audit_entry_viewed = Signal()


@receiver(user_logged_in, dispatch_uid="crm.activate_tenant_on_login")
def activate_tenant_on_login(sender, request, user, **kwargs) -> None:
    """From the moment of login, the rest of the request acts as the user's organization."""
    if tenancy.current() is not None:
        tenancy.activate_user(user)
