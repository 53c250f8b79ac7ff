"""Global search: each area registers a provider; the top bar's box asks all the user may use.

A provider is `fn(user, query, limit) -> list[SearchResult]`; it runs its own selector, scoped to the
user's organization and role, and returns at most `limit` results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crm.permissions import Capability, has_capability


@dataclass(frozen=True)
class SearchResult:
    kind: str
    title: str
    subtitle: str
    url: str
    icon: str = "search"


@dataclass(frozen=True)
class SearchProvider:
    kind: str
    capability: Capability
    search: Callable[..., list[SearchResult]]


_PROVIDERS: list[SearchProvider] = []


def register(provider: SearchProvider) -> None:
    if all(p.kind != provider.kind for p in _PROVIDERS):
        _PROVIDERS.append(provider)


def search_all(*, user, query: str, limit: int = 8) -> list[tuple[str, list[SearchResult]]]:
    """Results grouped by kind, in registration order; empty groups left out."""
    query = query.strip()[:100]
    if len(query) < 2:
        return []
    groups = []
    for provider in _PROVIDERS:
        if has_capability(user, provider.capability):
            results = provider.search(user=user, query=query, limit=limit)
            if results:
                groups.append((provider.kind, results))
    return groups
