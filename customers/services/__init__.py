"""Every write of the customers app, one module per area: customers.py (profiles, lifecycle,
interactions, bulk changes), scoring.py, segments.py, imports.py, merging.py."""
