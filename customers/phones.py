"""Phone numbers as the CRM compares them: the key two numbers share when they are the same number, and its
keyed hash (`Customer.phone_hash`), which is how an encrypted phone number is found and matched.

The key: every digit once an extension ("x12", "ext. 12", "extension 12") is dropped, at least
PHONE_MIN_DIGITS of them, the last PHONE_KEY_DIGITS kept, so a country code or trunk prefix does not hide a
match ("+1 (555) 010-2000" and "555 010 2000" share "5550102000").
"""

from __future__ import annotations

import re

from crm.encryption import blind_index

PHONE_MIN_DIGITS = 7
PHONE_KEY_DIGITS = 10

_EXTENSION = re.compile(r"\s*(x|ext\.?|extension)\s*\d+\s*$", re.IGNORECASE)
_NOT_DIGIT = re.compile(r"[^0-9]")
# What a search box query looks like when it is a phone number and nothing else.
_PHONE_QUERY = re.compile(r"[\d\s()+./-]+(?:(?:x|ext\.?|extension)\s*\d+)?", re.IGNORECASE)


def phone_key(value: str | None) -> str | None:
    """The comparable form of a phone number, or None when it has too few digits to be one."""
    if not value:
        return None
    digits = _NOT_DIGIT.sub("", _EXTENSION.sub("", value))
    if len(digits) < PHONE_MIN_DIGITS:
        return None
    return digits[-PHONE_KEY_DIGITS:]


def phone_hash(value: str | None) -> str | None:
    """The keyed hash of the number's key (None when it is not a phone number)."""
    key = phone_key(value)
    return blind_index(key) if key else None


def query_phone_hash(query: str) -> str | None:
    """The keyed hash to look up when a search query is a phone number (None for any other query)."""
    query = query.strip()
    if not _PHONE_QUERY.fullmatch(query):
        return None
    return phone_hash(query)
