"""URLs of the customers app, under /customers/. Each area keeps its routes in its own section."""

from django.urls import path  # noqa: F401  (each section below adds its routes)

app_name = "customers"

urlpatterns = [
    # --- profiles, list, 360 (views/customers.py) ---
    # --- segments (views/segments.py) ---
    # --- imports (views/imports.py) ---
    # --- duplicates and merge (views/duplicates.py) ---
    # --- scoring settings (views/scoring.py) ---
]
