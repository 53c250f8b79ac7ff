"""Every write of the sales app, one module per area (opportunities, pipelines, activities, quotes, ...)."""
