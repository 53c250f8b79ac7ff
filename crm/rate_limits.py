"""Fixed-window counters in the cache, for the public (no-login) forms: lead capture and privacy requests.

What is counted (a visitor's IP, an email address) is hashed first: the cache never holds it in the clear.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache


def over_limit(name: str, value: str, *, allowed: int, window: int) -> bool:
    """Count one event for `value` under `name`; True when it is over `allowed` in the current `window`
    (seconds)."""
    key = f"rate:{name}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
    cache.add(key, 0, timeout=window)  # starts the window; a no-op when it is already open
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr: a fresh window
        cache.add(key, 1, timeout=window)
        count = 1
    return count > allowed
