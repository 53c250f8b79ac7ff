"""What every page of the layout needs: the navigation for this user, the organization, preferences."""

from crm import navigation


def shell(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    prefs = user.preferences or {}
    return {
        "nav": navigation.items_for(user, request.path),
        "theme": prefs.get("theme", "light"),
        "density": prefs.get("density", "comfortable"),
    }
