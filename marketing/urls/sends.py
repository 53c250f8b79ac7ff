"""URLs of the sends area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
