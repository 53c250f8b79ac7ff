"""URLs of the settings area (combined in compliance/urls/__init__.py)."""

urlpatterns: list = []
