"""Public (no-login) URLs: downloads (combined in compliance/urls_public/__init__.py)."""

urlpatterns: list = []
