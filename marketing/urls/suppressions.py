"""URLs of the suppression list (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
