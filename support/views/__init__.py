"""Views of the support app, one module per area (tickets and workspace, SLA settings, routing and workload,
knowledge base, email, surveys and reports)."""
