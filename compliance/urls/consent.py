"""URLs of the consent area (combined in compliance/urls/__init__.py)."""

urlpatterns: list = []
