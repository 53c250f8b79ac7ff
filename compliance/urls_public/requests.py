"""Public (no-login) URLs: requests (combined in compliance/urls_public/__init__.py)."""

urlpatterns: list = []
