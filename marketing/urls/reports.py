"""URLs of the reports area (combined in marketing/urls/__init__.py)."""

urlpatterns: list = []
