"""URLs of the exports area (combined in compliance/urls/__init__.py)."""

urlpatterns: list = []
