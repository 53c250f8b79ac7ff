"""Panels other apps contribute to the customer 360 page (and keys to its JSON), without `customers`
importing any of them.

An app registers a `Panel` in its `AppConfig.ready()`:

    panels.register(Panel(key="active_opportunities", title=_("Open opportunities"),
                          template="sales/_customer_panel.html", capability=Capability.VIEW_OPPORTUNITIES,
                          load=open_opportunities_for_customer))

`load(customer=..., actor=...)` runs a fixed number of queries (whatever the customer's history) and
returns JSON-serialisable data; the page renders it with `template` (context: `panel`, `data`, `customer`)
and `/customers/<id>/360.json` puts it under `key`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm.permissions import Capability, has_capability


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    template: str
    capability: Capability
    load: Callable[..., Any]
    order: int = 100


_PANELS: dict[str, Panel] = {}


def register(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def panels_for(actor) -> list[Panel]:
    return sorted((p for p in _PANELS.values() if has_capability(actor, p.capability)), key=lambda p: p.order)


def load_all(*, customer, actor) -> list[dict]:
    """[{panel, data}] for every panel the actor may see, in order."""
    return [
        {"panel": panel, "data": panel.load(customer=customer, actor=actor)} for panel in panels_for(actor)
    ]
