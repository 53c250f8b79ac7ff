"""Run DDL as the owner role while the application itself connects as the unprivileged app role.

`DATABASE_URL` is the app role (not superuser, not BYPASSRLS, owns nothing); `DATABASE_OWNER_URL` is the
role that owns the schema. `migrate`, `flush` and test-database set-up switch the default connection to the
owner for their duration, then back; after `migrate`, the app role is granted what it may do.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


@contextmanager
def as_owner(alias: str = DEFAULT_DB_ALIAS) -> Iterator[str]:
    """Reconnect `alias` as the owner role for the block; yields the app role's name."""
    connection = connections[alias]
    if connection.settings_dict.get("_AS_OWNER"):
        yield connection.settings_dict["APP_ROLE"]
        return
    app = {key: connection.settings_dict.get(key) for key in _CREDENTIALS}
    connection.close()
    connection.settings_dict.update({key: settings.DATABASE_OWNER.get(key) for key in _CREDENTIALS})
    connection.settings_dict.update(_AS_OWNER=True, APP_ROLE=app["USER"])
    try:
        yield app["USER"]
    finally:
        connection.close()
        connection.settings_dict.update(app)
        connection.settings_dict["_AS_OWNER"] = False


def app_role_name(alias: str = DEFAULT_DB_ALIAS) -> str:
    connection = connections[alias]
    return connection.settings_dict.get("APP_ROLE") or connection.settings_dict["USER"]
