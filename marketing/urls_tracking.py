"""Public tracking URLs (no login, signed tokens): open pixel, click redirect, one-click unsubscribe."""

app_name = "tracking"
urlpatterns: list = []
