"""Tasks of the abtests area (see marketing/tasks/__init__.py)."""

__all__: list[str] = []
