"""The sidebar: every area that exists registers its entry; a user sees only what their role can open.

Domain apps add their areas in `AppConfig.ready()` with `register(...)`, so the platform imports none of
them and nothing that is not built is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from crm.permissions import Capability, has_capability


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str  # a Bootstrap Icons name
    capability: Capability
    # "main", "sales", "support", "marketing" or "settings" (the sidebar's groups, in that order)
    section: str = "main"
    order: int = 100


_ITEMS: list[NavItem] = []


def register(item: NavItem) -> None:
    if all(existing.url_name != item.url_name for existing in _ITEMS):
        _ITEMS.append(item)
        _ITEMS.sort(key=lambda i: (i.section, i.order, i.label))


def items_for(user, current_path: str = "") -> dict[str, list[dict]]:
    sections: dict[str, list[dict]] = {
        "main": [],
        "sales": [],
        "support": [],
        "marketing": [],
        "privacy": [],
        "settings": [],
    }
    entries = []
    for item in _ITEMS:
        if has_capability(user, item.capability):
            entries.append({"item": item, "url": reverse(item.url_name), "active": False})
    # The current area is the entry whose URL is the longest prefix of the path (/customers/imports/ is
    # "Imports", not also "Customers"); "/" only matches itself.
    matches = [
        e
        for e in entries
        if (current_path == e["url"] if e["url"] == "/" else current_path.startswith(e["url"]))
    ]
    if matches:
        max(matches, key=lambda e: len(e["url"]))["active"] = True
    for entry in entries:
        sections.setdefault(entry["item"].section, []).append(entry)
    return sections


def all_items() -> list[NavItem]:
    return list(_ITEMS)


def search_pages(*, user, query: str, limit: int) -> list:
    """'Go to' results: the areas whose name matches, among those the user may open."""
    from crm.search import SearchResult

    needle = query.lower()
    results = []
    for entries in items_for(user).values():
        for entry in entries:
            if needle in str(entry["item"].label).lower():
                results.append(
                    SearchResult(
                        kind="Pages",
                        title=str(entry["item"].label),
                        subtitle="",
                        url=entry["url"],
                        icon=entry["item"].icon,
                    )
                )
    return results[:limit]
