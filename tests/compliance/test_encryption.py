"""PII encryption at rest: unreadable in the database, readable in the app; key rotation; the keyed phone
hash that keeps search, duplicate detection and imports working; tampering refused loudly."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from crm import encryption
from crm.tenancy import system_context, tenant_context
from customers import duplicates, importing
from customers.models import Customer
from customers.phones import phone_key
from customers.segments.criteria import CriteriaError, validate_criteria
from customers.selectors import customers_of, search
from tests import factories
from tests.owner_db import owner_connection

ENCRYPTED_COLUMNS = ("phone", "date_of_birth", "street", "postal_code")
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _stored(customer_id) -> dict[str, str | None]:
    """The encrypted columns as the database holds them (the app role's view of its own rows)."""
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(ENCRYPTED_COLUMNS)}, phone_hash FROM customers WHERE id = %s", [customer_id]
        )
        row = cursor.fetchone()
    return dict(zip((*ENCRYPTED_COLUMNS, "phone_hash"), row, strict=True))


def _reload(customer) -> Customer:
    with tenant_context(customer.organization_id):
        return Customer.objects.get(pk=customer.pk)


def _ada(org, **fields):
    defaults = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0321",
        "date_of_birth": datetime.date(1985, 12, 10),
        "street": "12 St James Square",
        "postal_code": "SW1Y 4JH",
        "city": "London",
    }
    return factories.customer(org, **{**defaults, **fields})


def _expected_hash(phone: str) -> str:
    """The keyed hash computed independently: HMAC-SHA256 of the last ten digits, extension dropped."""
    digits = "".join(ch for ch in phone.split(" x")[0] if ch.isdigit())[-10:]
    return hmac.new(encryption.blind_index_key(), digits.encode(), hashlib.sha256).hexdigest()


# --- At rest: tokens in the database, plain values in the app --------------------------------------------


def test_the_database_holds_tokens_and_the_orm_reads_the_plain_values_back(org_a):
    ada = _ada(org_a)
    stored = _stored(ada.pk)
    for column in ENCRYPTED_COLUMNS:
        assert stored[column].startswith(encryption.TOKEN_PREFIX), column
    assert "7946" not in stored["phone"] and "James" not in stored["street"]
    assert "1985" not in stored["date_of_birth"] and "SW1Y" not in stored["postal_code"]
    assert stored["phone_hash"] == _expected_hash("+44 20 7946 0321")
    back = _reload(ada)
    assert (back.phone, back.date_of_birth, back.street, back.postal_code) == (
        "+44 20 7946 0321",
        datetime.date(1985, 12, 10),
        "12 St James Square",
        "SW1Y 4JH",
    )
    assert back.city == "London"  # plaintext on purpose: segments filter on it


@pytest.mark.django_db(transaction=True)
def test_raw_sql_as_the_owner_role_shows_no_plaintext():
    org = factories.organization(slug="owner-view", name="Owner view")
    ada = _ada(org)
    with owner_connection() as conn:
        conn.execute("SELECT set_config('app.user_role', 'system_admin', false)")
        row = conn.execute(
            f"SELECT {', '.join(ENCRYPTED_COLUMNS)} FROM customers WHERE id = %s", [ada.pk]
        ).fetchone()
        whole_row = conn.execute("SELECT c::text FROM customers c WHERE id = %s", [ada.pk]).fetchone()[0]
    assert all(value.startswith("gAAAAA") for value in row)
    for plain in ("7946", "0321", "St James", "SW1Y", "1985-12-10"):
        assert plain not in whole_row


def test_blank_values_stay_blank_so_only_whether_a_value_exists_is_visible(org_a):
    bare = factories.customer(org_a, first_name="Bare")
    assert _stored(bare.pk) == {
        "phone": "",
        "date_of_birth": None,
        "street": "",
        "postal_code": "",
        "phone_hash": None,
    }
    back = _reload(bare)
    assert (back.phone, back.date_of_birth, back.street, back.postal_code) == ("", None, "", "")
    with tenant_context(org_a.pk):
        assert set(Customer.objects.filter(phone="").values_list("pk", flat=True)) == {bare.pk}
        assert list(Customer.objects.filter(date_of_birth__isnull=True).values_list("pk", flat=True)) == [
            bare.pk
        ]


def test_the_same_value_encrypts_differently_each_time(org_a):
    one, two = _ada(org_a, email="one@x.example"), _ada(org_a, email="two@x.example")
    assert _stored(one.pk)["phone"] != _stored(two.pk)["phone"]  # no equal-ciphertext leak
    assert _stored(one.pk)["phone_hash"] == _stored(two.pk)["phone_hash"]  # the blind index is what matches


def test_comparing_an_encrypted_column_with_a_value_is_refused_not_silently_empty(org_a):
    with tenant_context(org_a.pk):
        with pytest.raises(FieldError, match="encrypted"):
            list(Customer.objects.filter(phone="+44 20 7946 0321"))
        with pytest.raises(FieldError):
            list(Customer.objects.filter(street__icontains="James"))


def test_tampered_ciphertext_raises_a_clear_error(org_a):
    ada = _ada(org_a)
    token = _stored(ada.pk)["street"]
    flipped = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    with system_context(), connection.cursor() as cursor:
        cursor.execute("UPDATE customers SET street = %s WHERE id = %s", [flipped, ada.pk])
    with pytest.raises(encryption.DecryptionError, match=r"customers\.street.*altered"):
        _reload(ada)


def test_editing_the_phone_keeps_its_hash_and_blanking_it_clears_the_hash(org_a):
    ada = _ada(org_a)
    with tenant_context(org_a.pk):
        ada.phone = "(555) 010-2000 x12"
        ada.save(update_fields=["phone"])
    assert _stored(ada.pk)["phone_hash"] == _expected_hash("(555) 010-2000 x12")
    with tenant_context(org_a.pk):
        ada.phone = ""
        ada.save()
    assert _stored(ada.pk)["phone_hash"] is None


# --- Keys: configuration, old keys, rotation --------------------------------------------------------------


def test_a_token_of_an_old_key_still_decrypts_once_a_new_key_is_put_first(org_a):
    with override_settings(CRM_ENCRYPTION_KEYS=[OLD_KEY]):
        ada = _ada(org_a)
        old_token = _stored(ada.pk)["phone"]
    Fernet(OLD_KEY).decrypt(old_token.encode())  # really the old key's
    with override_settings(CRM_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert _reload(ada).phone == "+44 20 7946 0321"
        with pytest.raises(InvalidToken):
            Fernet(NEW_KEY).decrypt(old_token.encode())
    with override_settings(CRM_ENCRYPTION_KEYS=[NEW_KEY]), pytest.raises(encryption.DecryptionError):
        _reload(ada)  # the old key removed too early: refused, not garbage


def test_rotate_encryption_key_leaves_tokens_of_the_new_key_only_and_a_second_run_writes_nothing(
    org_a, org_b
):
    with override_settings(CRM_ENCRYPTION_KEYS=[OLD_KEY]):
        people = [_ada(org_a, email=f"a{n}@x.example") for n in range(5)]
        people.append(_ada(org_b, email="b@x.example", street=""))
        bare = factories.customer(org_a, first_name="Bare")
    with override_settings(CRM_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        dry = io.StringIO()
        call_command("rotate_encryption_key", "--dry-run", "--batch-size", "2", stdout=dry)
        assert "6 of 7 row(s) would be re-encrypted" in dry.getvalue()
        assert all(
            _stored(p.pk)["phone"] and Fernet(OLD_KEY).decrypt(_stored(p.pk)["phone"].encode())
            for p in people
        )
        out = io.StringIO()
        call_command("rotate_encryption_key", "--batch-size", "2", stdout=out)
        assert "6 of 7 row(s) re-encrypted" in out.getvalue()
        assert "[##############################] 7/7 (100%)" in out.getvalue()
    new_only = Fernet(NEW_KEY)
    for person in people:
        stored = _stored(person.pk)
        for column in ENCRYPTED_COLUMNS:
            if stored[column]:
                new_only.decrypt(stored[column].encode())  # decrypts with the new key alone
        assert stored["phone_hash"] == _expected_hash("+44 20 7946 0321")
    assert _stored(bare.pk)["phone"] == ""
    with override_settings(CRM_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key removed: everything still reads
        assert _reload(people[-1]).postal_code == "SW1Y 4JH"
        again = io.StringIO()
        call_command("rotate_encryption_key", stdout=again)
        assert "0 of 7 row(s) re-encrypted" in again.getvalue()


def test_rotation_brings_phone_hashes_up_to_date_after_the_blind_index_key_changes(org_a):
    ada = _ada(org_a)
    with override_settings(CRM_BLIND_INDEX_KEY="another-blind-index-key-0123456789"):
        call_command("rotate_encryption_key", stdout=io.StringIO())
        assert _stored(ada.pk)["phone_hash"] == _expected_hash("+44 20 7946 0321")
        with tenant_context(org_a.pk):
            assert list(
                search(customers_of(actor=_user(org_a)), "+44 20 7946 0321", organization_id=org_a.pk)
            )


def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error():
    with override_settings(CRM_ENCRYPTION_KEYS=["not-a-key"]), pytest.raises(Exception, match="Fernet key"):
        encryption.encrypt("x")


def test_without_configured_keys_dev_and_test_derive_a_stable_key_from_the_secret_key(settings):
    settings.CRM_ENCRYPTION_KEYS = []
    expected = base64.urlsafe_b64encode(
        hashlib.sha256(b"crm.encryption.fernet-key.v1:" + settings.SECRET_KEY.encode()).digest()
    ).decode()
    assert encryption.configured_keys() == (expected,)
    assert Fernet(expected).decrypt(encryption.encrypt("hello").encode()) == b"hello"


# --- What still works through the keyed hash ---------------------------------------------------------------


def _user(org):
    return factories.user(org, role="admin")


def test_search_finds_a_customer_by_phone_in_any_format_within_the_organization_only(org_a, org_b):
    ada = _ada(org_a, phone="+1 (555) 010-2000")
    _ada(org_b, phone="+1 (555) 010-2000", email="other@x.example")
    factories.customer(org_a, first_name="Noise", phone="+1 (555) 010-2001")
    actor = _user(org_a)
    with tenant_context(org_a.pk):
        for query in ("555 010 2000", "+1 555-010-2000", "(555) 010 2000 x4"):
            found = list(search(customers_of(actor=actor), query, organization_id=org_a.pk))
            assert [c.pk for c in found] == [ada.pk], query
        # Names still match as before, and a phone match ranks first.
        assert [c.pk for c in search(customers_of(actor=actor), "Lovelace", organization_id=org_a.pk)] == [
            ada.pk
        ]


def test_the_phone_is_no_longer_in_the_search_terms(org_a):
    ada = _ada(org_a, phone="+1 (555) 010-2000", email="ada@lovelace.example")
    with tenant_context(org_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT term FROM customer_search_terms WHERE customer_id = %s", [ada.pk])
        terms = {row[0] for row in cursor.fetchall()}
    assert terms and not any(ch.isdigit() for term in terms for ch in term)


def test_duplicates_by_phone_match_on_the_keyed_hash(org_a):
    a = factories.customer(org_a, first_name="Paula", last_name="Perez", phone="+1 (555) 010-2000")
    b = factories.customer(org_a, first_name="Hank", last_name="Hill", phone="555 010 2000 ext. 7")
    factories.customer(org_a, first_name="Ivy", last_name="Ito", phone="555 010 2001")
    assert phone_key(a.phone) == phone_key(b.phone) == "5550102000"
    with tenant_context(org_a.pk):
        pairs = duplicates.find_duplicates(organization_id=org_a.pk).items
    found = {frozenset((p.a_id, p.b_id)): {r.kind for r in p.reasons} for p in pairs}
    assert found == {frozenset((a.pk, b.pk)): {"phone"}}


def test_import_encrypts_while_streaming_and_hashes_the_phone(org_a, tmp_path):
    existing = _ada(org_a, email="ada@import.example")
    header = ",".join(importing.CUSTOMERS.header)
    cells = dict.fromkeys(importing.CUSTOMERS.header, "")
    rows = []
    for email, phone, street, born in (
        ("ada@import.example", "+1 555 010 3000", "1 New Street", "1985-12-11"),
        ("bo@import.example", "(555) 010-4000", "2 Elm Road", "1990-01-02"),
        ("cy@import.example", "", "", ""),
    ):
        row = {**cells, "first_name": email[:2], "last_name": "X", "email": email, "phone": phone}
        row.update(street=street, date_of_birth=born, postal_code="94110" if phone else "")
        rows.append(",".join(row[name] for name in importing.CUSTOMERS.header))
    path = tmp_path / "people.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    with tenant_context(org_a.pk):
        outcome = importing.run_import(path=path, kind="customers", organization=org_a, policy="update")
    assert (outcome.ok, outcome.created, outcome.updated) == (True, 2, 1)
    with tenant_context(org_a.pk):
        people = {c.email: c for c in Customer.objects.filter(organization=org_a)}
    bo, cy, ada = people["bo@import.example"], people["cy@import.example"], people["ada@import.example"]
    assert (bo.phone, bo.street, bo.postal_code, bo.date_of_birth) == (
        "(555) 010-4000",
        "2 Elm Road",
        "94110",
        datetime.date(1990, 1, 2),
    )
    assert (cy.phone, cy.street, cy.date_of_birth) == ("", "", None)
    assert (ada.pk, ada.phone, ada.street) == (existing.pk, "+1 555 010 3000", "1 New Street")
    for person, phone in ((bo, "(555) 010-4000"), (ada, "+1 555 010 3000")):
        stored = _stored(person.pk)
        assert all(stored[c].startswith(encryption.TOKEN_PREFIX) for c in ENCRYPTED_COLUMNS)
        assert stored["phone_hash"] == _expected_hash(phone)
    assert _stored(cy.pk)["phone_hash"] is None
    with tenant_context(org_a.pk):
        assert [
            c.pk for c in search(customers_of(actor=_user(org_a)), "555 010 4000", organization_id=org_a.pk)
        ] == [bo.pk]


def test_segments_only_ask_whether_an_encrypted_field_is_set():
    rule = {"field": "date_of_birth", "op": "before", "value": "1980-01-01"}
    with pytest.raises(CriteriaError):
        validate_criteria({"match": "all", "rules": [rule]})
    assert validate_criteria({"match": "all", "rules": [{"field": "date_of_birth", "op": "is_not_empty"}]})


def test_scoring_still_awards_the_age_points_from_the_encrypted_date_of_birth(org_a):
    from customers import scoring
    from customers.scoring.definition import organization_settings

    with tenant_context(org_a.pk):
        weights, _tz = organization_settings(org_a.pk)
    today = datetime.date.today()
    in_range = today.replace(year=today.year - (weights.age_min + weights.age_max) // 2)
    young = today.replace(year=today.year - max(weights.age_min - 5, 1))
    a = _ada(org_a, email="in@x.example", date_of_birth=in_range, education_level="", job_title="")
    b = _ada(org_a, email="young@x.example", date_of_birth=young, education_level="", job_title="")
    with tenant_context(org_a.pk):
        scoring.score_organization(org_a.pk)
        scores = dict(Customer.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "lead_score"))
    assert scores[a.pk] - scores[b.pk] == weights.age_points - weights.demographic_other_points
