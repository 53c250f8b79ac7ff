"""PII encryption at rest: the key ring, the encrypted model fields and the keyed hash (blind index).

Values are encrypted by the application with Fernet (AES-128-CBC + HMAC-SHA256, authenticated: a changed
byte is refused, never decrypted into garbage) through a `MultiFernet` key ring:

- `CRM_ENCRYPTION_KEYS`: comma-separated Fernet keys. The first encrypts; every key decrypts, so a new key
  can be put first while rows still hold tokens of the old one (`manage.py rotate_encryption_key` then
  re-encrypts them). Production settings refuse to start without it; dev and test derive one stable key
  from SECRET_KEY when it is unset.
- `CRM_BLIND_INDEX_KEY`: the HMAC key of the blind indexes (`phone_hash`), separate from the encryption
  keys so that rotating those does not change a single hash (docs/security.md explains the choice).
  Derived from SECRET_KEY in dev and test when unset; required in production.

The fields store a Fernet token (text starting with "gAAAAA") in a text column and give the application the
plain value. Blank stays blank: '' (or NULL for a nullable field) is stored as is, so the database shows
whether a customer has a phone number, never the number. An encrypted column can only be compared with
blank (`exact` '' / `isnull`): any other lookup would compare plaintext with ciphertext and silently match
nothing, so it raises FieldError instead.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.utils.functional import cached_property

# Every Fernet token starts so: the version byte 0x80 and a 64-bit timestamp, base64url-encoded.
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 (a format marker, not a secret)
_DERIVED_KEY_LABEL = b"crm.encryption.fernet-key.v1:"
_DERIVED_INDEX_LABEL = b"crm.encryption.blind-index-key.v1:"


class DecryptionError(Exception):
    """A stored value is not a token any configured key accepts: it was changed in the database, or it
    was encrypted with a key no longer in CRM_ENCRYPTION_KEYS."""


def _derived(label: bytes) -> bytes:
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured(
            "PII encryption needs CRM_ENCRYPTION_KEYS (or, in dev and test, SECRET_KEY)."
        )
    return hashlib.sha256(label + settings.SECRET_KEY.encode()).digest()


def configured_keys() -> tuple[str, ...]:
    """The Fernet keys, primary first: CRM_ENCRYPTION_KEYS, or one derived from SECRET_KEY when unset."""
    keys = tuple(key.strip() for key in getattr(settings, "CRM_ENCRYPTION_KEYS", ()) or () if key.strip())
    return keys or (base64.urlsafe_b64encode(_derived(_DERIVED_KEY_LABEL)).decode(),)


@functools.lru_cache(maxsize=8)
def _ring_for(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    try:
        fernets = [Fernet(key) for key in keys]
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "CRM_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes; "
            "make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
        ) from error
    return MultiFernet(fernets), fernets[0]


def key_ring() -> MultiFernet:
    """The MultiFernet of the configured keys (cached per key list, so settings overrides take effect)."""
    return _ring_for(configured_keys())[0]


def primary_key() -> Fernet:
    """The key that encrypts: the first of CRM_ENCRYPTION_KEYS."""
    return _ring_for(configured_keys())[1]


def encrypt(plaintext: str) -> str:
    return key_ring().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, what: str = "value") -> str:
    try:
        return key_ring().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            f"The encrypted {what} cannot be decrypted: it was altered in the database, or it was encrypted "
            "with a key that is no longer in CRM_ENCRYPTION_KEYS."
        ) from None


def is_primary(token: str) -> bool:
    """Whether the primary key alone decrypts the token (a key rotation has nothing left to do for it)."""
    try:
        primary_key().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str, *, what: str = "value") -> str:
    """The token re-encrypted with the primary key (decrypted with whichever key of the ring accepts it)."""
    try:
        return key_ring().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(f"The encrypted {what} cannot be decrypted for rotation.") from None


def blind_index_key() -> bytes:
    key = getattr(settings, "CRM_BLIND_INDEX_KEY", "") or ""
    return key.encode() if key else _derived(_DERIVED_INDEX_LABEL)


def blind_index(value: str) -> str:
    """The keyed hash (HMAC-SHA256, hex) of an already normalised value: equal values, equal hashes, and
    without the key a hash cannot be checked against guesses (a plain SHA-256 of a phone number can)."""
    return hmac.new(blind_index_key(), value.encode(), hashlib.sha256).hexdigest()


# --- The fields ---------------------------------------------------------------------------------------------


class _BlankExact(Exact):
    """`field=''` / `field=None` only: a non-blank value cannot be found by comparing ciphertext."""

    def get_prep_lookup(self):
        if self.rhs not in ("", None) and not hasattr(self.rhs, "resolve_expression"):
            target = getattr(self.lhs, "target", None)
            name = f"{target.model.__name__}.{target.name}" if target is not None else "This field"
            raise FieldError(
                f"{name} is encrypted: it can only be compared with blank (use its blind index to find a value)."
            )
        return self.rhs


class EncryptedTextField(models.TextField):
    """Text encrypted at rest (a Fernet token in a text column); the model sees the plain string.

    `max_length` limits the plain value (forms, imports), not the column. `blind_index=(attname,
    normalise)` keeps a keyed hash of `normalise(value)` in another field of the model on every save (None
    when `normalise` returns None, e.g. too few digits to be a phone number).
    """

    def __init__(self, *args, blind_index: tuple[str, Callable[[str], str | None]] | None = None, **kwargs):
        self.blind_index = blind_index
        super().__init__(*args, **kwargs)

    @cached_property
    def validators(self):
        # A TextField does not check max_length; the plain value must fit what forms and imports promise.
        extra = [MaxLengthValidator(self.max_length)] if self.max_length else []
        return [*super().validators, *extra]

    def formfield(self, **kwargs):
        # A one-line input (models.TextField would render a textarea), limited like a CharField's.
        return models.Field.formfield(self, **{"max_length": self.max_length, **kwargs})

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return _BlankExact
        if lookup_name == "isnull":
            return IsNull
        return None  # Django then raises FieldError "Unsupported lookup ... for EncryptedTextField"

    def get_transform(self, lookup_name):
        return None

    def to_plain(self, value):
        """The plain string a model attribute holds (str, or None)."""
        return value if value is None else str(value)

    def plain_to_text(self, value) -> str:
        return value

    def text_to_plain(self, text: str):
        return text

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return self.text_to_plain(decrypt(value, what=self._label()))

    def get_db_prep_save(self, value, connection):
        value = self.to_plain(value)
        if value is None or value == "":
            return value
        return encrypt(self.plain_to_text(value))

    def pre_save(self, model_instance, add):
        value = super().pre_save(model_instance, add)
        if self.blind_index is not None:
            attname, normalise = self.blind_index
            key = normalise(value) if value else None
            setattr(model_instance, attname, blind_index(key) if key else None)
        return value

    def _label(self) -> str:
        model = getattr(self, "model", None)
        return f"{model._meta.db_table}.{self.column}" if model is not None else str(self.name)


class EncryptedDateField(EncryptedTextField):
    """A date encrypted at rest (the token of its ISO form, "YYYY-MM-DD"); the model sees a `date`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        return models.DateField().to_python(value)

    def to_plain(self, value):
        return self.to_python(value)

    def plain_to_text(self, value: datetime.date) -> str:
        return value.isoformat()

    def text_to_plain(self, text: str) -> datetime.date:
        return datetime.date.fromisoformat(text)

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else value.isoformat()

    def formfield(self, **kwargs):
        return models.Field.formfield(self, **{"form_class": forms.DateField, **kwargs})


def encrypted_fields() -> Iterator[tuple[type[models.Model], list[EncryptedTextField]]]:
    """Every concrete model with encrypted fields, and those fields (for key rotation)."""
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            yield model, fields


# --- Key rotation -------------------------------------------------------------------------------------------


@dataclass
class RotationBatch:
    """One batch of one model: the last id read (the keyset cursor), rows read and rows rewritten."""

    last_pk: object
    read: int
    rewritten: int


def _rotated_row(fields: list[EncryptedTextField], tokens: tuple, hashes: dict[str, str | None]):
    """The row's tokens under the primary key and its blind indexes under the current index key, or None
    when nothing needs writing (every token already the primary key's, every hash current)."""
    new_tokens, new_hashes = [], {}
    changed = False
    for field, token in zip(fields, tokens, strict=True):
        if not token or is_primary(token):
            new_tokens.append(token)
        else:
            new_tokens.append(rotate(token, what=field._label()))
            changed = True
        if field.blind_index is not None:
            attname, normalise = field.blind_index
            key = normalise(decrypt(token, what=field._label())) if token else None
            new_hashes[attname] = blind_index(key) if key else None
            changed = changed or new_hashes[attname] != hashes[attname]
    return (new_tokens, new_hashes) if changed else None


def rotate_batch(
    model: type[models.Model], fields: list[EncryptedTextField], *, after, size: int, dry_run: bool = False
) -> RotationBatch | None:
    """Re-encrypt the next `size` rows of `model` after id `after` (keyset over the primary key) with the
    primary key, and bring their blind indexes up to date; None when no rows are left.

    Runs in the caller's transaction (one per batch, with a context that sees every organization: the
    command uses system_context()). The rows are locked (FOR UPDATE) from the read to the write, so an edit
    made meanwhile is never overwritten with the old value; rows already under the primary key are not
    written again, so a rerun after a crash picks up where the last committed batch left off."""
    from django.db import connection

    table, pk = connection.ops.quote_name(model._meta.db_table), model._meta.pk
    hash_columns = [f.blind_index[0] for f in fields if f.blind_index is not None]
    hash_fields = [model._meta.get_field(name) for name in hash_columns]
    columns = [pk.column, *(f.column for f in fields), *(f.column for f in hash_fields)]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    where = f"WHERE {connection.ops.quote_name(pk.column)} > %s " if after is not None else ""
    lock = "" if dry_run else " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quoted} FROM {table} {where}ORDER BY {connection.ops.quote_name(pk.column)} LIMIT %s{lock}",
            [after, size] if after is not None else [size],
        )
        rows = cursor.fetchall()
        if not rows:
            return None
        updates = []
        for row in rows:
            tokens = row[1 : 1 + len(fields)]
            hashes = dict(zip(hash_columns, row[1 + len(fields) :], strict=True))
            rotated = _rotated_row(fields, tokens, hashes)
            if rotated is not None:
                new_tokens, new_hashes = rotated
                updates.append([row[0], *new_tokens, *(new_hashes[name] for name in hash_columns)])
        if updates and not dry_run:
            arrays = list(zip(*updates, strict=True))
            types = [pk.db_type(connection), *("text" for _ in fields), *("text" for _ in hash_fields)]
            unnest = ", ".join(f"%s::{t}[]" for t in types)
            names = ", ".join(f"v{i}" for i in range(len(columns)))
            assignments = ", ".join(
                f"{connection.ops.quote_name(column)} = v.v{i}" for i, column in enumerate(columns) if i
            )
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM unnest({unnest}) AS v({names}) "
                f"WHERE t.{connection.ops.quote_name(pk.column)} = v.v0",
                [list(values) for values in arrays],
            )
    return RotationBatch(last_pk=rows[-1][0], read=len(rows), rewritten=len(updates))
