"""Tasks of the sends area (see marketing/tasks/__init__.py)."""

__all__: list[str] = []
