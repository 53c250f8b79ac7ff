"""URLs of the forms area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
