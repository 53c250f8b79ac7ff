"""URLs of the sales app, under /sales/. Each area keeps its imports and routes in its own section."""

from django.urls import path  # noqa: F401  (used by the sections below)

app_name = "sales"

urlpatterns = [
    # --- pipelines, board, list, opportunity pages, sales settings (views/opportunities.py, views/pipelines.py) ---
    # --- activities, My day (views/activities.py) ---
    # --- products, quotes, approvals, orders (views/products.py, views/quotes.py, views/orders.py) ---
    # --- forecast, quotas (views/forecast.py) ---
    # --- dashboard, performance analytics (views/dashboard.py) ---
]
