"""URLs of the requests area (combined in compliance/urls/__init__.py)."""

urlpatterns: list = []
