"""URLs of the campaigns area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
