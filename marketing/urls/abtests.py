"""URLs of the abtests area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
