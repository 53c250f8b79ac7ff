"""Encrypted customer data for the benchmarks' set-based fills (docs/security.md).

The benchmarks write customers with `INSERT INTO customers ... SELECT ... FROM generate_series`. Since
migration customers 0009, `phone`, `date_of_birth`, `street` and `postal_code` hold Fernet tokens (blank
stays '' / NULL) and `phone_hash` the keyed hash of the phone's digits, neither of which SQL can compute. A
benchmark that needs those values makes them here, with the model fields' own encryption (what the ORM
writes) and `customers.phones.phone_hash` (what `Customer.save()` writes), and passes them as arrays that
the INSERT joins on the row number (`unnest(...) WITH ORDINALITY`): one statement for every row, never an
INSERT per row. Encrypting costs about 10 µs a value, hashing 5 µs: a second or two for 100,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from customers.models import Customer
from customers.phones import phone_hash


def stored(field: str, values: Iterable) -> list[str | None]:
    """What the ORM writes to `customers.<field>` for each plain value: a token, '' or None for blank."""
    model_field = Customer._meta.get_field(field)
    return [model_field.get_db_prep_save(value, connection) for value in values]


def stored_phones(phones: Iterable[str]) -> tuple[list[str], list[str | None]]:
    """The phones' tokens and their keyed hashes (None for a blank phone, as the check constraint wants)."""
    phones = list(phones)
    return stored("phone", phones), [phone_hash(phone) for phone in phones]
