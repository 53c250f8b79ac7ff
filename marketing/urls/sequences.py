"""URLs of the sequences area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
