"""Tasks of the sequences area (see marketing/tasks/__init__.py)."""

__all__: list[str] = []
