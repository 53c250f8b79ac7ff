"""What every page of the layout needs: the navigation for this user, the organization, preferences."""

from crm import navigation
from crm.permissions import capabilities_of


def shell(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    prefs = user.preferences or {}
    return {
        "nav": navigation.items_for(user, request.path),
        # What the templates may link to: `{% if can.users_view %}` for Capability.VIEW_USERS ("users.view").
        "can": {str(capability).replace(".", "_"): True for capability in capabilities_of(user)},
        "theme": prefs.get("theme", "light"),
        "density": prefs.get("density", "comfortable"),
    }
