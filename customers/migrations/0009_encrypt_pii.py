import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models

import crm.encryption
from crm.db.audit import attach_audit

# migration 0007's list: derived columns the customers trail leaves out.
EXCLUDED = ("lead_score", "engagement_score", "health_score", "scored_at", "updated_at")
ENCRYPTED = ("phone", "date_of_birth", "street", "postal_code")
BATCH = 2000

# The searchable text and fields without the phone (now ciphertext; found through phone_hash instead).
_TEXT = "lower({a}.first_name || ' ' || {a}.last_name || ' ' || {a}.email || ' ' || {a}.company_name)"
_TEXT_0005 = (
    "lower({a}.first_name || ' ' || {a}.last_name || ' ' || {a}.email || ' ' || {a}.company_name"
    " || ' ' || {a}.phone)"
)
_SEARCHABLE = ("organization_id", "first_name", "last_name", "email", "company_name")
_SEARCHABLE_0007 = (*_SEARCHABLE, "phone")


def _search_triggers(text: str, searchable: tuple[str, ...]) -> str:
    """The search-term functions and row trigger of migrations 0005/0007 over `searchable` and `text`."""
    row = "(" + ", ".join(f"{{row}}.{name}" for name in searchable) + ")"
    return f"""
DROP TRIGGER IF EXISTS customer_search_terms_update ON customers;

CREATE OR REPLACE FUNCTION customer_search_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT c.organization_id, t.term, c.id
    FROM new_rows c CROSS JOIN LATERAL unnest(show_trgm({text.format(a="c")})) AS t(term);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION customer_search_terms_update_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_search_terms
    WHERE organization_id = OLD.organization_id AND customer_id = OLD.id;
    INSERT INTO customer_search_terms (organization_id, term, customer_id)
    SELECT NEW.organization_id, t.term, NEW.id FROM unnest(show_trgm({text.format(a="NEW")})) AS t(term);
    RETURN NULL;
END;
$$;

CREATE TRIGGER customer_search_terms_update AFTER UPDATE OF {", ".join(searchable)} ON customers
    FOR EACH ROW WHEN ({row.format(row="OLD")} IS DISTINCT FROM {row.format(row="NEW")})
    EXECUTE FUNCTION customer_search_terms_update_row();

-- Every customer's terms again: the old ones hold trigrams of the phone numbers.
SELECT set_config('app.user_role', 'system_admin', true);
DELETE FROM customer_search_terms;
INSERT INTO customer_search_terms (organization_id, term, customer_id)
SELECT c.organization_id, t.term, c.id
FROM customers c CROSS JOIN LATERAL unnest(show_trgm({text.format(a="c")})) AS t(term);
SET CONSTRAINTS ALL IMMEDIATE;
"""


# PostgreSQL refuses to change the type of a column named in a trigger's UPDATE OF list: the search-term
# trigger (0007) and the audit trigger (0008) go first, and come back once the columns are text. The
# backfill below thus runs without the audit trigger: encrypting stored values is not a change of the
# customers' data, and auditing it would copy every plaintext value into the trail once more.
DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS customer_search_terms_update ON customers;
DROP TRIGGER IF EXISTS crm_audit ON customers;
"""


def _batches(cursor, table: str, columns: tuple[str, ...]):
    """The rows of `table` (every organization's) in batches of BATCH, keyset over id. The whole migration
    is one transaction (all or nothing); the batches bound the memory and the size of each statement."""
    cursor.execute("SELECT set_config('app.user_role', 'system_admin', true)")
    last = None
    while True:
        cursor.execute(
            f"SELECT id, {', '.join(columns)} FROM {table}"
            " WHERE %s::uuid IS NULL OR id > %s::uuid ORDER BY id LIMIT %s",
            [last, last, BATCH],
        )
        rows = cursor.fetchall()
        if not rows:
            break
        last = rows[-1][0]
        yield rows
    # The updates queued deferred foreign-key checks; the schema changes that follow in this transaction
    # (CREATE INDEX, ALTER TABLE) refuse to run while any are pending.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _write(cursor, table: str, changed: list[tuple]) -> None:
    if not changed:
        return
    ids, phones, births, streets, postal_codes, hashes = (
        list(column) for column in zip(*changed, strict=True)
    )
    cursor.execute(
        f"UPDATE {table} AS c SET phone = v.phone, date_of_birth = v.date_of_birth, street = v.street,"
        " postal_code = v.postal_code, phone_hash = v.phone_hash"
        " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
        " AS v(id, phone, date_of_birth, street, postal_code, phone_hash) WHERE c.id = v.id",
        [ids, phones, births, streets, postal_codes, hashes],
    )


def encrypt_existing(apps, schema_editor):
    """Encrypt every stored phone, date of birth, street and postal code, and hash the phones. Values that
    already are tokens are left as they are (a rerun after a failure changes nothing twice)."""
    from customers.phones import phone_hash

    def encrypted(value):
        if not value or value.startswith(crm.encryption.TOKEN_PREFIX):
            return value
        return crm.encryption.encrypt(value)

    table = apps.get_model("customers", "Customer")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        for rows in _batches(cursor, table, (*ENCRYPTED, "phone_hash")):
            changed = []
            for pk, phone, birth, street, postal_code, stored_hash in rows:
                values = (encrypted(phone), encrypted(birth), encrypted(street), encrypted(postal_code))
                plain_phone = phone if phone and not phone.startswith(crm.encryption.TOKEN_PREFIX) else None
                new_hash = phone_hash(plain_phone) if plain_phone else stored_hash
                if values != (phone, birth, street, postal_code) or new_hash != stored_hash:
                    changed.append((pk, *values, new_hash))
            _write(cursor, table, changed)


def decrypt_existing(apps, schema_editor):
    """Back to plaintext (for the reverse migration, before the columns get their old types again)."""

    def plain(value):
        if not value or not value.startswith(crm.encryption.TOKEN_PREFIX):
            return value
        return crm.encryption.decrypt(value)

    table = apps.get_model("customers", "Customer")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        for rows in _batches(cursor, table, ENCRYPTED):
            _write(cursor, table, [(pk, *(plain(v) for v in values), None) for pk, *values in rows])


class Migration(migrations.Migration):
    """Phone, date of birth, street and postal code encrypted at rest (crm/encryption.py,
    docs/security.md): the columns become text holding Fernet tokens, existing rows are encrypted in
    batches, the phone's keyed hash (`phone_hash`, indexed per organization) takes over finding a number,
    and the phone leaves the search terms and the trigram index."""

    dependencies = [("customers", "0008_consent_columns")]

    operations = [
        migrations.RunSQL(
            DROP_TRIGGERS,
            reverse_sql=[
                _search_triggers(_TEXT_0005, _SEARCHABLE_0007),
                *attach_audit(
                    "customers", sensitivity="confidential", exclude=EXCLUDED, audited_columns_only=True
                ).sql,
            ],
        ),
        migrations.RemoveIndex(model_name="customer", name="customers_search_trgm_idx"),
        migrations.AddField(
            model_name="customer",
            name="phone_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="customer",
            name="date_of_birth",
            field=crm.encryption.EncryptedDateField(blank=True, null=True, verbose_name="date of birth"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="phone",
            field=crm.encryption.EncryptedTextField(blank=True, max_length=40, verbose_name="phone"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="postal_code",
            field=crm.encryption.EncryptedTextField(blank=True, max_length=20, verbose_name="postal code"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="street",
            field=crm.encryption.EncryptedTextField(blank=True, max_length=200, verbose_name="street"),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["organization", "phone_hash"], name="customers_org_phone_hash_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Concat(
                        "first_name",
                        models.Value(" "),
                        "last_name",
                        models.Value(" "),
                        "email",
                        models.Value(" "),
                        "company_name",
                        output_field=models.TextField(),
                    ),
                    name="gin_trgm_ops",
                ),
                name="customers_search_trgm_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("phone", ""), _negated=True), ("phone_hash__isnull", True), _connector="OR"
                ),
                name="customers_phone_hash_ck",
            ),
        ),
        migrations.RunSQL(
            _search_triggers(_TEXT, _SEARCHABLE),
            reverse_sql='DROP TRIGGER IF EXISTS customer_search_terms_update ON customers; DROP TRIGGER IF EXISTS crm_audit ON "customers"',
        ),
        attach_audit("customers", sensitivity="confidential", exclude=EXCLUDED, audited_columns_only=True),
    ]
