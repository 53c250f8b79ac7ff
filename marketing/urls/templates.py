"""URLs of the templates area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
