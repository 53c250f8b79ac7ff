"""Duplicates and merge: which pairs are found and why (recomputed here from the rules, with our own trigram
similarity), the merge (every record kept, field picks, tags, audit trail, atomicity, tenancy), and the
pages (404s, roles, htmx dismiss and undo, constant query counts)."""

from __future__ import annotations

import datetime
import itertools
import re
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from celery.schedules import crontab
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import ProgrammingError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.celery import app as celery_app
from crm.models import AuditLog
from crm.permissions import Role
from crm.tenancy import TenantContextError, system_context, tenant_context
from customers import duplicates, merging, tasks
from customers.duplicates import finding
from customers.models import (
    Customer,
    DuplicateDismissal,
    Interaction,
    LifecycleChange,
    ScoreHistory,
    Segment,
    SegmentEvent,
    SegmentMember,
)
from customers.services.merging import customers_merge, duplicate_dismiss, duplicate_restore
from tests import factories

# --- An independent implementation of the rules -----------------------------------------------------------


def trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams: lower-cased words of letters and digits, padded with two spaces in front and one
    behind."""
    grams = set()
    for word in re.findall(r"[0-9a-z]+", text.lower()):
        padded = f"  {word} "
        grams |= {padded[i : i + 3] for i in range(len(padded) - 2)}
    return grams


def similarity(a: str, b: str) -> float:
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    common = len(ta & tb)
    return common / (len(ta) + len(tb) - common)


def phone_key(phone: str) -> str | None:
    phone = re.sub(r"\s*(x|ext\.?|extension)\s*\d+\s*$", "", phone, flags=re.IGNORECASE)
    digits = re.sub(r"\D", "", phone)
    return digits[-10:] if len(digits) >= 7 else None


def expected_pairs(customers: list[Customer]) -> dict[tuple, tuple[int, set[str]]]:
    """Every pair the rules call a likely duplicate, brute force over all pairs: {(a_id, b_id): (confidence,
    reasons)} with a_id < b_id."""
    found = {}
    live = [c for c in customers if not c.erased_at and not c.anonymized_at]
    for x, y in itertools.combinations(live, 2):
        a, b = sorted([x, y], key=lambda c: c.pk)
        reasons, e, p, n = set(), 0.0, 0.0, 0.0
        email_a, email_b = a.email.strip(" \t.").lower(), b.email.strip(" \t.").lower()
        if email_a and email_a == email_b:
            reasons.add("email")
            e = 0.9
        if phone_key(a.phone) and phone_key(a.phone) == phone_key(b.phone):
            reasons.add("phone")
            p = 0.7
        name_sim = similarity(f"{a.first_name} {a.last_name}", f"{b.first_name} {b.last_name}")
        ca, cb = a.company_name.strip().lower(), b.company_name.strip().lower()
        company = 1.0 if ca == cb else similarity(ca, cb)  # equal covers "both empty"
        if name_sim >= 0.6 and company >= 0.6:
            reasons.add("name")
            n = 0.8 * name_sim * company
        if reasons:
            confidence = Decimal(100 * (1 - (1 - e) * (1 - p) * (1 - n))).quantize(0, ROUND_HALF_UP)
            found[(a.pk, b.pk)] = (int(confidence), reasons)
    return found


NAMES = list(
    zip(
        [
            "Alice",
            "Bruno",
            "Chen",
            "Dmitri",
            "Eskil",
            "Farah",
            "Gwen",
            "Hiro",
            "Ines",
            "Jamal",
            "Kofi",
            "Lupe",
            "Mika",
            "Nadia",
        ],
        [
            "Abbott",
            "Barros",
            "Cho",
            "Dvorak",
            "Eklund",
            "Farouk",
            "Grant",
            "Hayashi",
            "Ibarra",
            "Jensen",
            "Kumar",
            "Lopez",
            "Moreau",
            "Novak",
        ],
        strict=True,
    )
)


def refresh(org) -> duplicates.RefreshResult:
    with tenant_context(org.pk):
        return duplicates.duplicate_pairs_refresh(organization_id=org.pk)


def listed_pairs(org, **kwargs) -> list[duplicates.DuplicatePair]:
    """What the list shows now (every page at once), read from the stored pairs without refreshing."""
    with tenant_context(org.pk):
        return duplicates.duplicates_page(actor=SimpleNamespace(organization_id=org.pk), per_page=1000).items


def all_pairs(org) -> list[duplicates.DuplicatePair]:
    """The organization's pairs as the list shows them after a refresh, checked against the same rules
    computed live (the finder the page used to run on every load)."""
    refresh(org)
    stored = listed_pairs(org)
    with tenant_context(org.pk):
        live = duplicates.find_duplicates(organization_id=org.pk, per_page=1000).items
    assert [(p.a_id, p.b_id, p.confidence, p.reasons) for p in stored] == [
        (p.a_id, p.b_id, p.confidence, p.reasons) for p in live
    ]
    return stored


def stored_rows(org) -> dict[tuple, tuple]:
    """The organization's rows of customer_duplicate_pairs, as the platform sees them."""
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_a_id, customer_b_id, same_email, same_phone, name_similarity, company_similarity,"
            " confidence, computed_at FROM customer_duplicate_pairs WHERE organization_id = %s",
            [org.pk],
        )
        return {(a, b): tuple(rest) for a, b, *rest in cursor.fetchall()}


def as_found(pairs) -> dict[tuple, tuple[int, set[str]]]:
    return {(p.a_id, p.b_id): (p.confidence, {r.kind for r in p.reasons}) for p in pairs}


def key(x: Customer, y: Customer) -> tuple:
    return tuple(sorted([x.pk, y.pk]))


def raw(sql: str, params) -> None:
    with system_context(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def people(org_a):
    """A hand-made organization: who should pair with whom, and who should not."""
    c = factories.customer
    made = {
        # phone only, written two ways
        "paula": c(
            org_a, first_name="Paula", last_name="Gomez", company_name="Globex", phone="+1 (555) 010-2000"
        ),
        "hank": c(org_a, first_name="Hank", last_name="Hill", company_name="Strickland", phone="5550102000"),
        # similar names at the same company (case and spaces differ)
        "jon": c(org_a, first_name="Jon", last_name="Smith", company_name="Initech"),
        "john": c(org_a, first_name="John", last_name="Smith", company_name=" INITECH"),
        # the same name at different companies: not paired
        "mary_u": c(org_a, first_name="Mary", last_name="Jones", company_name="Umbrella"),
        "mary_h": c(org_a, first_name="Mary", last_name="Jones", company_name="Hooli"),
        # the same name, neither with a company
        "zed1": c(org_a, first_name="Zed", last_name="Zulu"),
        "zed2": c(org_a, first_name="Zed", last_name="Zulu"),
        # the same email once surrounding spaces, dots and case are ignored (written around the services)
        "erin": c(org_a, first_name="Erin", last_name="Brock", email="dup@mail.example"),
        "oscar": c(org_a, first_name="Oscar", last_name="Wilde", email="placeholder@mail.example"),
        # similar names at the same company AND the same phone (one with an extension)
        "sara": c(
            org_a, first_name="Sara", last_name="Connor", company_name="Cyberdyne", phone="555-010-9999"
        ),
        "sarah": c(
            org_a,
            first_name="Sarah",
            last_name="Connor",
            company_name="cyberdyne",
            phone="(555) 010 9999 x12",
        ),
        # too few digits to say anything
        "short1": c(org_a, first_name="Ivy", last_name="Short", phone="12-345"),
        "short2": c(org_a, first_name="Gus", last_name="Brief", phone="12345"),
        # one of them erased: never paired
        "kept": c(org_a, first_name="Eve", last_name="Archer", phone="555 777 1234"),
        "erased": c(org_a, first_name="Eve", last_name="Archer", phone="555 777 1234"),
    }
    raw("UPDATE customers SET email = %s WHERE id = %s", [" DUP@mail.example.", made["oscar"].pk])
    raw("UPDATE customers SET erased_at = now() WHERE id = %s", [made["erased"].pk])
    with system_context():
        fresh = {c.pk: c for c in Customer.objects.filter(organization_id=org_a.pk)}
    return {name: fresh[customer.pk] for name, customer in made.items()}


# --- Finding duplicates -------------------------------------------------------------------------------------


def test_finds_exactly_the_expected_pairs_with_their_reasons_and_confidence(people, org_a):
    p = people
    found = as_found(all_pairs(org_a))
    assert found == {
        key(p["paula"], p["hank"]): (70, {"phone"}),
        key(p["jon"], p["john"]): (49, {"name"}),  # 0.8 x 8/13 = 0.492
        key(p["zed1"], p["zed2"]): (80, {"name"}),
        key(p["erin"], p["oscar"]): (90, {"email"}),
        key(p["sara"], p["sarah"]): (89, {"phone", "name"}),  # 1 - 0.3 x (1 - 0.8 x 11/14)
    }
    # ... and the same as the rules computed here by brute force over every pair.
    assert found == expected_pairs(list(people.values()))


def test_pairs_come_most_certain_first_with_the_similarity_values(people, org_a):
    pairs = all_pairs(org_a)
    assert [pair.confidence for pair in pairs] == [90, 89, 80, 70, 49]
    jon = next(pair for pair in pairs if pair.confidence == 49)
    (reason,) = jon.reasons
    assert reason.kind == "name"
    assert reason.similarity == pytest.approx(8 / 13, abs=1e-6)
    assert reason.company_similarity == 1.0
    assert reason.label == "Similar name (62%)"
    assert reason.detail == "Same company"
    zed = next(pair for pair in pairs if pair.confidence == 80)
    assert zed.reasons[0].company_similarity is None
    assert zed.reasons[0].detail == "No company on either"


def test_similar_companies_count_scaled_by_their_similarity(org_a):
    a = factories.customer(org_a, first_name="Nora", last_name="Bright", company_name="Wayne Enterprises")
    b = factories.customer(org_a, first_name="Nora", last_name="Bright", company_name="Wayne Enterprise")
    company = similarity("wayne enterprises", "wayne enterprise")
    assert 0.6 <= company < 1
    ((pair_key, (confidence, reasons)),) = as_found(all_pairs(org_a)).items()
    assert pair_key == key(a, b)
    assert reasons == {"name"}
    assert confidence == int(Decimal(80 * company).quantize(0, ROUND_HALF_UP))


def test_anonymized_customers_are_left_out_too(org_a):
    a = factories.customer(org_a, first_name="Lia", last_name="Quinn", phone="555 222 3333")
    b = factories.customer(org_a, first_name="Lia", last_name="Quinn", phone="555 222 3333")
    assert set(as_found(all_pairs(org_a))) == {key(a, b)}
    raw("UPDATE customers SET anonymized_at = now() WHERE id = %s", [b.pk])
    assert all_pairs(org_a) == []


def test_pairs_marked_not_a_duplicate_leave_the_list_at_once_until_the_mark_is_undone(people, org_a, admin_a):
    p = people
    assert len(all_pairs(org_a)) == 5
    with tenant_context(org_a.pk, user=admin_a):
        duplicate_dismiss(a=p["john"], b=p["jon"], actor=admin_a)  # either order
        duplicate_dismiss(a=p["jon"], b=p["john"], actor=admin_a)  # idempotent
        assert DuplicateDismissal.objects.count() == 1
    # No refresh in between: the list leaves the pair out as it reads.
    assert key(p["jon"], p["john"]) not in as_found(listed_pairs(org_a))
    assert len(listed_pairs(org_a)) == 4
    # A refresh keeps it out too (the pair is stored, the mark hides it).
    assert key(p["jon"], p["john"]) not in as_found(all_pairs(org_a))
    assert key(p["jon"], p["john"]) in stored_rows(org_a)
    with tenant_context(org_a.pk, user=admin_a):
        assert duplicate_restore(a=p["jon"], b=p["john"], actor=admin_a) is True
    assert key(p["jon"], p["john"]) in as_found(listed_pairs(org_a))  # back at once


def test_pairs_never_cross_organizations(people, org_a, org_b):
    twin = factories.customer(
        org_b, first_name="Paula", last_name="Gomez", company_name="Globex", phone="5550102000"
    )
    assert all(twin.pk not in pair_key for pair_key in as_found(all_pairs(org_a)))
    assert all_pairs(org_b) == []


def test_another_organizations_stored_pairs_are_invisible_and_untouched(people, org_a, org_b, admin_a):
    b1, b2 = _twins(org_b, 1)[0]
    refresh(org_b)
    refresh(org_a)
    assert set(stored_rows(org_b)) == {key(b1, b2)}
    # Row-level security: in org A's context the table holds org A's rows only, whatever the query says.
    with tenant_context(org_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customer_duplicate_pairs WHERE organization_id = %s", [org_b.pk])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM customer_duplicate_runs WHERE organization_id = %s", [org_b.pk])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT DISTINCT organization_id FROM customer_duplicate_pairs")
        assert cursor.fetchall() == [(org_a.pk,)]
    # Org A's refresh left org B's pairs alone, and org A's list shows none of them.
    assert set(stored_rows(org_b)) == {key(b1, b2)}
    assert not {b1.pk, b2.pk} & {pk for pair_key in as_found(listed_pairs(org_a)) for pk in pair_key}
    # A row for another organization is refused by the policy.
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        tenant_context(org_a.pk),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO customer_duplicate_pairs (organization_id, customer_a_id, customer_b_id, same_email,"
            " same_phone, confidence, computed_at) VALUES (%s, %s, %s, true, false, 90, now())",
            [org_b.pk, *key(b1, b2)],
        )


@pytest.mark.parametrize("source", ["stored", "live"])
def test_keyset_pages_walk_every_pair_once_forwards_and_back(source, org_a):
    _twins(org_a, 7)
    everything = [(p.a_id, p.b_id) for p in all_pairs(org_a)]
    assert len(everything) == 7
    actor = SimpleNamespace(organization_id=org_a.pk)

    def page_of(cursor):
        if source == "stored":
            return duplicates.duplicates_page(actor=actor, cursor=cursor, per_page=3)
        return duplicates.find_duplicates(organization_id=org_a.pk, cursor=cursor, per_page=3)

    seen, pages, cursor = [], [], None
    with tenant_context(org_a.pk):
        while True:
            page = page_of(cursor)
            assert page.total == 7
            pages.append(page)
            seen += [(p.a_id, p.b_id) for p in page.items]
            if not page.has_next:
                break
            cursor = page.next_cursor
        assert seen == everything
        assert [len(page.items) for page in pages] == [3, 3, 1]
        back = page_of(pages[-1].previous_cursor)
        assert [(p.a_id, p.b_id) for p in back.items] == everything[3:6]
        assert back.has_next and back.has_previous
        forged = page_of("forged")
        assert [(p.a_id, p.b_id) for p in forged.items] == everything[:3]


def test_name_candidates_from_the_rarest_trigrams_miss_no_pair_of_a_brute_force_comparison(org_a):
    """The prefix filter is exact: on names with typos, swaps and near misses around the 0.6 threshold,
    the pairs equal a comparison of every pair with the trigram similarity computed here."""
    bases = [
        ("Jonathan", "Smith", "Initech"),
        ("Katherine", "Johnson", "Acme"),
        ("Alexander", "Petrov", ""),
        ("Maria", "Gonzalez", "Globex"),
        ("Wei", "Zhang", "Hooli"),
        ("Priya", "Raman", ""),
    ]
    made = []
    for first, last, company in bases:
        variants = [
            (first, last),
            (first[:-1], last),  # a letter dropped
            (first, last + last[-1]),  # a letter doubled
            (first.replace("a", "e", 1), last),  # a vowel changed
            (first[:3], last),  # a short form
            (last, first),  # swapped
            (first, last[1:]),  # the first letter lost
        ]
        for v, (variant_first, variant_last) in enumerate(variants):
            # The same company, in other case and spacing, or (last variant) another one.
            shown = company if v % 3 else f"{company.upper()} "
            if v == 6:
                shown = f"{company} Corp" if company else "Other"
            made.append(
                factories.customer(
                    org_a, first_name=variant_first, last_name=variant_last, company_name=shown
                )
            )
    with system_context():
        made = list(Customer.objects.filter(pk__in=[c.pk for c in made]))
    expected = expected_pairs(made)
    near_threshold = [
        (a, b)
        for a, b in itertools.combinations(made, 2)
        if 0.55 <= similarity(f"{a.first_name} {a.last_name}", f"{b.first_name} {b.last_name}") < 0.65
    ]
    assert len(made) == 42 and len(expected) > 40 and len(near_threshold) > 20  # the data set tests something
    assert as_found(all_pairs(org_a)) == expected


def test_finding_duplicates_puts_the_planner_settings_back(org_a):
    _twins(org_a, 1)
    with tenant_context(org_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_nestloop'), current_setting('jit')")
        before = cursor.fetchone()
        assert duplicates.find_duplicates(organization_id=org_a.pk).total == 1
        cursor.execute("SELECT current_setting('enable_nestloop'), current_setting('jit')")
        assert cursor.fetchone() == before
        assert duplicates.duplicate_pairs_refresh(organization_id=org_a.pk).pairs == 1
        cursor.execute("SELECT current_setting('enable_nestloop'), current_setting('jit')")
        assert cursor.fetchone() == before


# --- The stored pairs: refresh, and what keeps them right in between -------------------------------------


def test_refresh_stores_each_pair_once_with_its_reasons_similarities_and_confidence(people, org_a):
    p = people
    result = refresh(org_a)
    assert (result.pairs, result.inserted, result.updated, result.deleted) == (5, 5, 0, 0)
    rows = stored_rows(org_a)
    expected = expected_pairs(list(people.values()))
    assert set(rows) == set(expected)
    for pair_key, (email, phone, name_sim, company_sim, confidence, computed_at) in rows.items():
        assert pair_key[0] < pair_key[1]
        assert name_sim is not None or company_sim is None  # a company similarity only with a name match
        assert computed_at == result.computed_at
        kinds = {kind for kind, on in (("email", email), ("phone", phone), ("name", name_sim)) if on}
        assert (confidence, kinds) == expected[pair_key]
    jon = rows[key(p["jon"], p["john"])]
    assert jon[2] == pytest.approx(similarity("Jon Smith", "John Smith"), abs=1e-6)  # 8/13
    assert jon[3] == 1.0  # the same company, ignoring case and spaces
    zed = rows[key(p["zed1"], p["zed2"])]
    assert (zed[2], zed[3]) == (1.0, None)  # no company on either
    paula = rows[key(p["paula"], p["hank"])]
    assert paula[:4] == (False, True, None, None)


def test_a_second_refresh_with_nothing_changed_writes_nothing_and_moves_the_as_of_time(people, org_a):
    first = refresh(org_a)
    rows = stored_rows(org_a)
    second = refresh(org_a)
    assert (second.pairs, second.inserted, second.updated, second.deleted) == (5, 0, 0, 0)
    assert stored_rows(org_a) == rows  # the same rows, each with the time it was last written
    assert second.computed_at > first.computed_at
    with tenant_context(org_a.pk):
        status = duplicates.duplicates_status(organization_id=org_a.pk)
    assert (status.computed_at, status.pair_count, status.pending) == (second.computed_at, 5, False)


def test_a_refresh_inserts_new_pairs_updates_changed_ones_and_deletes_vanished_ones(people, org_a):
    p = people
    first = refresh(org_a)
    newcomer = factories.customer(org_a, first_name="Zed", last_name="Zulu")  # a third Zed
    # The phone pair vanishes (a blank phone has no keyed hash: customers_phone_hash_ck).
    raw("UPDATE customers SET phone = '', phone_hash = NULL WHERE id = %s", [p["hank"].pk])
    raw(
        "UPDATE customers SET company_name = 'Initech Inc' WHERE id = %s", [p["john"].pk]
    )  # similar, not equal
    result = refresh(org_a)
    rows = stored_rows(org_a)
    assert key(p["paula"], p["hank"]) not in rows
    assert {key(newcomer, p["zed1"]), key(newcomer, p["zed2"])} <= set(rows)
    with system_context():
        everyone = list(Customer.objects.filter(organization_id=org_a.pk))
    kinds = (("email", 0), ("phone", 1), ("name", 2))
    assert {k: (v[4], {n for n, i in kinds if v[i]}) for k, v in rows.items()} == expected_pairs(everyone)
    # jon-john: still a name match, now at a similar company (8/10 of the trigrams), so a lower confidence.
    jon = rows[key(p["jon"], p["john"])]
    assert jon[3] == pytest.approx(similarity("initech", "initech inc"), abs=1e-6)
    assert jon[4] == int(Decimal(80 * 8 / 13 * 0.8).quantize(0, ROUND_HALF_UP)) == 39
    assert (result.pairs, result.inserted, result.updated, result.deleted) == (6, 2, 1, 1)
    written = {k for k, v in rows.items() if v[5] == result.computed_at}
    assert written == {key(newcomer, p["zed1"]), key(newcomer, p["zed2"]), key(p["jon"], p["john"])}
    assert all(v[5] == first.computed_at for k, v in rows.items() if k not in written)


def test_merging_or_deleting_a_customer_takes_its_pairs_off_the_list_at_once(people, org_a, admin_a):
    p = people
    refresh(org_a)
    assert key(p["sara"], p["sarah"]) in stored_rows(org_a)
    with tenant_context(org_a.pk, user=admin_a):
        customers_merge(target=p["sara"], source=p["sarah"], actor=admin_a)
    rows = stored_rows(org_a)
    assert not any(p["sarah"].pk in pair_key for pair_key in rows)  # cascaded with the source
    assert key(p["sara"], p["sarah"]) not in as_found(listed_pairs(org_a))
    with tenant_context(org_a.pk, user=admin_a):
        Customer.objects.filter(pk=p["hank"].pk).delete()
    assert key(p["paula"], p["hank"]) not in stored_rows(org_a)
    assert set(as_found(listed_pairs(org_a))) == {
        key(p["jon"], p["john"]),
        key(p["zed1"], p["zed2"]),
        key(p["erin"], p["oscar"]),
    }
    # The next refresh agrees with the rules on what is left.
    with system_context():
        everyone = list(Customer.objects.filter(organization_id=org_a.pk))
    assert as_found(all_pairs(org_a)) == expected_pairs(everyone)


def test_customers_erased_or_anonymized_since_the_refresh_are_left_off_the_list(people, org_a):
    p = people
    refresh(org_a)
    raw("UPDATE customers SET anonymized_at = now() WHERE id = %s", [p["oscar"].pk])
    raw("UPDATE customers SET erased_at = now() WHERE id = %s", [p["zed2"].pk])
    listed = set(as_found(listed_pairs(org_a)))
    assert listed == {key(p["paula"], p["hank"]), key(p["jon"], p["john"]), key(p["sara"], p["sarah"])}


def test_the_refresh_task_refreshes_its_organization_only(people, org_a, org_b):
    _twins(org_b, 1)
    assert tasks.refresh_duplicate_pairs(organization_id=str(org_a.pk)) == 5
    assert len(stored_rows(org_a)) == 5 and stored_rows(org_b) == {}
    with pytest.raises(TenantContextError):
        tasks.refresh_duplicate_pairs()


def test_the_hourly_beat_task_enqueues_one_refresh_per_trial_or_active_organization(
    org_a, org_b, monkeypatch, django_capture_on_commit_callbacks
):
    suspended = factories.organization(status="suspended")
    enqueued = []
    monkeypatch.setattr(tasks.refresh_duplicate_pairs, "delay_on_commit", lambda **kw: enqueued.append(kw))
    assert tasks.refresh_all_duplicate_pairs() >= 2
    ids = {kw["organization_id"] for kw in enqueued}
    assert {str(org_a.pk), str(org_b.pk)} <= ids and str(suspended.pk) not in ids
    entry = celery_app.conf.beat_schedule["refresh-duplicates"]
    assert entry["task"] == tasks.refresh_all_duplicate_pairs.name
    assert entry["schedule"] == crontab(minute=45)  # hourly


# --- Merging ---------------------------------------------------------------------------------------------


def _segment(org, name, *members):
    with system_context():
        segment = Segment.objects.create(
            organization=org, name=name, kind=Segment.Kind.STATIC, member_count=len(members)
        )
        for customer in members:
            SegmentMember.objects.create(organization=org, segment=segment, customer=customer)
            SegmentEvent.objects.create(organization=org, segment=segment, customer=customer, kind="added")
    return segment


@pytest.fixture
def pair(org_a, admin_a):
    """Two customers of the same person, each with history: interactions, segments, scores."""
    target = factories.customer(
        org_a,
        first_name="Jon",
        last_name="Smith",
        email="jon@initech.example",
        company_name="Initech",
        phone="",
        job_title="",
        tags=["vip", "west"],
        lifecycle_stage="lead",
    )
    source = factories.customer(
        org_a,
        first_name="John",
        last_name="Smith",
        email="john.smith@initech.example",
        company_name="Initech",
        phone="+1 555 010 2000",
        job_title="CTO",
        tags=["west", "tech"],
        lifecycle_stage="opportunity",
        city="Austin",
        country="US",
    )
    now = timezone.now()
    for days in (1, 2, 3):
        factories.interaction(
            target, interaction_type="call", interaction_date=now - datetime.timedelta(days=days)
        )
    for days in (4, 5):
        factories.interaction(
            source, interaction_type="meeting", interaction_date=now - datetime.timedelta(days=days)
        )
    both = _segment(org_a, "Both", target, source)
    only_source = _segment(org_a, "Only source", source)
    only_target = _segment(org_a, "Only target", target)
    with system_context():
        ScoreHistory.objects.create(
            organization=org_a, customer=source, lead_score=40, engagement_score=1, health_score=2
        )
        ScoreHistory.objects.create(
            organization=org_a, customer=target, lead_score=20, engagement_score=1, health_score=2
        )
    return {"target": target, "source": source, "segments": (both, only_source, only_target)}


def _counts(org, customer_id) -> dict[str, int]:
    with tenant_context(org.pk):
        return {
            "interactions": Interaction.objects.filter(customer_id=customer_id).count(),
            "segments": SegmentMember.objects.filter(customer_id=customer_id).count(),
            "segment_events": SegmentEvent.objects.filter(customer_id=customer_id).count(),
            "lifecycle": LifecycleChange.objects.filter(customer_id=customer_id).count(),
            "scores": ScoreHistory.objects.filter(customer_id=customer_id).count(),
        }


def _merge(org, actor, target, source, **choices):
    with tenant_context(org.pk):
        return customers_merge(target=target, source=source, actor=actor, field_choices=choices)


def test_merge_keeps_every_interaction_and_segment_membership_of_both(pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    before_t, before_s = _counts(org_a, target.pk), _counts(org_a, source.pk)
    assert (before_t["interactions"], before_s["interactions"]) == (3, 2)
    _merge(org_a, admin_a, target, source)
    after = _counts(org_a, target.pk)
    assert after["interactions"] == 3 + 2 + 1  # plus the merge note
    assert after["segment_events"] == before_t["segment_events"] + before_s["segment_events"]
    assert after["lifecycle"] == before_t["lifecycle"] + before_s["lifecycle"]
    assert after["scores"] == 2
    both, only_source, only_target = pair["segments"]
    with tenant_context(org_a.pk):
        assert set(
            SegmentMember.objects.filter(customer_id=target.pk).values_list("segment_id", flat=True)
        ) == {both.pk, only_source.pk, only_target.pk}
        # The segment both were in counts one member fewer (one customer now); the others are unchanged.
        counts = dict(Segment.objects.values_list("name", "member_count"))
        assert counts == {"Both": 1, "Only source": 1, "Only target": 1}
        assert counts["Both"] == SegmentMember.objects.filter(segment=both).count()
    assert _counts(org_a, source.pk) == dict.fromkeys(after, 0)


def test_merge_applies_the_field_picks_unions_tags_and_keeps_the_target_number(pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    number = target.number
    merged = _merge(
        org_a,
        admin_a,
        target,
        source,
        email="source",
        phone="source",
        job_title="source",
        address="source",
        name="target",
    )
    with tenant_context(org_a.pk):
        merged = Customer.objects.get(pk=target.pk)
        assert not Customer.objects.filter(pk=source.pk).exists()
    assert merged.number == number
    assert (merged.first_name, merged.last_name) == ("Jon", "Smith")
    assert merged.email == "john.smith@initech.example"  # the source's, free once the source is gone
    assert merged.phone == "+1 555 010 2000"
    assert merged.job_title == "CTO"
    assert (merged.city, merged.country) == ("Austin", "US")
    assert merged.lifecycle_stage == "lead"  # not picked: the target's
    assert merged.tags == ["tech", "vip", "west"]


def test_merge_records_a_stage_change_and_the_later_last_contact(pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    with tenant_context(org_a.pk):
        latest = max(
            Customer.objects.filter(pk__in=[target.pk, source.pk]).values_list("last_contact_date", flat=True)
        )
    _merge(org_a, admin_a, target, source, lifecycle_stage="source")
    with tenant_context(org_a.pk):
        merged = Customer.objects.get(pk=target.pk)
        change = LifecycleChange.objects.filter(customer_id=target.pk).order_by("-changed_at", "-id").first()
    assert merged.lifecycle_stage == "opportunity"
    assert (change.from_stage, change.to_stage, change.changed_by_id) == ("lead", "opportunity", admin_a.pk)
    assert merged.last_contact_date == latest


def test_merge_is_in_the_audit_trail_under_the_actor_with_a_note_on_the_survivor(pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    _merge(org_a, admin_a, target, source, job_title="source")
    with tenant_context(org_a.pk):
        rows = AuditLog.objects.filter(table_name="customers", record_id__in=[str(target.pk), str(source.pk)])
        deleted = rows.get(operation="DELETE", record_id=str(source.pk))
        updated = rows.filter(operation="UPDATE", record_id=str(target.pk)).order_by("-occurred_at").first()
        note = Interaction.objects.get(customer_id=target.pk, interaction_type="note")
    assert deleted.user_id == admin_a.pk
    assert deleted.old_values["email"] == "john.smith@initech.example"
    assert updated.user_id == admin_a.pk
    assert updated.new_values["job_title"] == "CTO"
    assert note.logged_by_id == admin_a.pk
    assert note.notes == (
        f"Merged {source.customer_number} (John Smith, john.smith@initech.example) into this customer by "
        f"{admin_a.get_full_name()}"
    )


def test_a_failing_reassigner_leaves_both_customers_as_they_were(pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    before = (_counts(org_a, target.pk), _counts(org_a, source.pk))

    def broken_reassign(*, organization_id, source_id, target_id) -> int:
        raise RuntimeError("the other app failed")

    merging.register(broken_reassign, label="Broken")
    try:
        with pytest.raises(RuntimeError):
            _merge(org_a, admin_a, target, source, email="source")
    finally:
        merging.unregister(broken_reassign)
    assert (_counts(org_a, target.pk), _counts(org_a, source.pk)) == before
    with tenant_context(org_a.pk):
        assert Customer.objects.get(pk=target.pk).email == "jon@initech.example"
        assert Customer.objects.get(pk=source.pk).email == "john.smith@initech.example"
        assert not AuditLog.objects.filter(operation="DELETE", record_id=str(source.pk)).exists()


def test_registered_reassigners_of_other_apps_run_with_the_ids(pair, org_a, admin_a):
    calls = []

    def other_app_reassign(*, organization_id, source_id, target_id) -> int:
        calls.append((organization_id, source_id, target_id))
        return 0

    merging.register(other_app_reassign, label="Other app")
    try:
        _merge(org_a, admin_a, pair["target"], pair["source"])
    finally:
        merging.unregister(other_app_reassign)
    assert calls == [(org_a.pk, pair["source"].pk, pair["target"].pk)]


def test_not_a_duplicate_marks_of_the_source_move_to_the_target(org_a, admin_a):
    target, source, other, third = (factories.customer(org_a) for _ in range(4))
    with tenant_context(org_a.pk, user=admin_a):
        duplicate_dismiss(a=source, b=other, actor=admin_a)
        duplicate_dismiss(a=source, b=target, actor=admin_a)
        duplicate_dismiss(a=third, b=target, actor=admin_a)
        duplicate_dismiss(a=third, b=source, actor=admin_a)
    _merge(org_a, admin_a, target, source)
    with tenant_context(org_a.pk):
        pairs = set(DuplicateDismissal.objects.values_list("customer_a_id", "customer_b_id"))
    assert pairs == {key(target, other), key(target, third)}


def test_merge_keeps_a_processing_restriction_of_either(org_a, admin_a):
    target, source = factories.customer(org_a), factories.customer(org_a)
    raw(
        "UPDATE customers SET processing_restricted = true, restriction_reason = 'objection', restricted_at = now()"
        " WHERE id = %s",
        [source.pk],
    )
    _merge(org_a, admin_a, target, source)
    with tenant_context(org_a.pk):
        merged = Customer.objects.get(pk=target.pk)
    assert (merged.processing_restricted, merged.restriction_reason) == (True, "objection")


def test_merge_refuses_other_organizations_itself_unknown_fields_and_roles_without_the_capability(
    org_a, org_b, admin_a, admin_b
):
    a1, a2 = factories.customer(org_a), factories.customer(org_a)
    b1 = factories.customer(org_b)
    rep = factories.user(org_a, role=Role.SALES_REP)
    with tenant_context(org_a.pk, user=admin_a):
        with pytest.raises(PermissionDenied):
            customers_merge(target=a1, source=b1, actor=admin_a)
        with pytest.raises(PermissionDenied):
            customers_merge(target=a1, source=a2, actor=admin_b)
        with pytest.raises(PermissionDenied):
            customers_merge(target=a1, source=a2, actor=rep)
        with pytest.raises(ValidationError):
            customers_merge(target=a1, source=a1, actor=admin_a)
        with pytest.raises(ValidationError):
            customers_merge(target=a1, source=a2, actor=admin_a, field_choices={"password": "source"})
        with pytest.raises(ValidationError):
            customers_merge(target=a1, source=a2, actor=admin_a, field_choices={"email": "both"})
        with pytest.raises(PermissionDenied):
            duplicate_dismiss(a=a1, b=b1, actor=admin_a)
        assert Customer.objects.filter(pk__in=[a1.pk, a2.pk]).count() == 2
    raw("UPDATE customers SET erased_at = now() WHERE id = %s", [a2.pk])
    with tenant_context(org_a.pk, user=admin_a), pytest.raises(ValidationError):
        customers_merge(target=a1, source=a2, actor=admin_a)


def test_default_picks_prefer_filled_values_then_the_recent_one_and_restrictive_consent(org_a):
    old = factories.customer(org_a, job_title="", phone="555 000 1111", email_opt_in=True, do_not_call=False)
    new = factories.customer(
        org_a, job_title="CEO", phone="555 000 2222", email_opt_in=False, do_not_call=True
    )
    raw("UPDATE customers SET updated_at = now() - interval '1 day' WHERE id = %s", [old.pk])
    with system_context():
        old, new = Customer.objects.get(pk=old.pk), Customer.objects.get(pk=new.pk)
    groups = merging.FIELD_GROUPS_BY_NAME
    assert merging.default_choice(groups["job_title"], old, new) == "b"  # the filled one
    assert merging.default_choice(groups["phone"], old, new) == "b"  # both filled: the recent one
    assert merging.default_choice(groups["phone"], new, old) == "a"
    assert merging.default_choice(groups["email_opt_in"], old, new) == "b"  # not opted in
    assert merging.default_choice(groups["do_not_call"], old, new) == "b"  # do not call


# --- Pages ---------------------------------------------------------------------------------------------------


def _twins(org, n, *, start=0, **extra):
    """`n` pairs of namesakes with the same phone, no two pairs alike."""
    made = []
    for i in range(start, start + n):
        first, last = NAMES[i]
        made.append(
            tuple(
                factories.customer(org, first_name=first, last_name=last, phone=f"555 400 {i:04d}", **extra)
                for _ in range(2)
            )
        )
    return made


def test_list_page_shows_each_pair_side_by_side_with_reasons_and_actions(client, login, org_a, admin_a):
    ((a, b),) = _twins(org_a, 1, company_name="Acme")
    result = refresh(org_a)
    login(admin_a)
    response = client.get(reverse("customers:duplicates"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 likely duplicate pair" in body
    first, second = sorted([a, b], key=lambda c: c.pk)
    assert body.count(a.display_name) >= 2 and a.customer_number in body and b.customer_number in body
    assert 'data-reason="phone"' in body and 'data-reason="name"' in body
    # phone 0.7 and name 0.8 x 1.0 (same name, same company): 1 - 0.3 x 0.2 = 0.94
    assert "94% match" in body
    assert reverse("customers:duplicates_merge", args=[first.pk, second.pk]) in body
    assert reverse("customers:duplicates_dismiss", args=[first.pk, second.pk]) in body
    # When the pairs were computed, and the way to recompute them now.
    assert f'datetime="{result.computed_at.isoformat()}"' in body
    assert 'data-testid="refresh-now"' in body and 'data-testid="refreshing"' not in body


def test_list_page_has_an_empty_state(client, login, org_a, admin_a):
    factories.customer(org_a)
    refresh(org_a)
    login(admin_a)
    body = client.get(reverse("customers:duplicates")).content.decode()
    assert 'data-testid="duplicates-empty"' in body
    assert "No likely duplicates" in body


def test_list_page_before_any_refresh_says_so_and_offers_one(client, login, org_a, admin_a):
    _twins(org_a, 1)
    login(admin_a)
    body = client.get(reverse("customers:duplicates")).content.decode()
    assert 'data-testid="duplicates-not-computed"' in body and "Not looked for yet" in body
    assert 'data-testid="refresh-now"' in body
    assert "0 likely duplicate pairs" in body


def test_list_page_shows_a_capped_count_beyond_a_thousand_pairs(client, login, org_a, admin_a, monkeypatch):
    monkeypatch.setattr(duplicates.pages, "COUNT_CAP", 3)
    _twins(org_a, 5)
    refresh(org_a)
    login(admin_a)
    response = client.get(reverse("customers:duplicates"))
    page = response.context["page"]
    assert (page.total, page.total_capped, len(page.items)) == (3, True, 5)
    assert "3+ likely duplicate pairs" in response.content.decode()


def test_list_page_query_count_does_not_grow_with_pairs(client, login, org_a, admin_a):
    owner = factories.user(org_a, role=Role.SALES_REP)
    _twins(org_a, 2, assigned_to=owner)
    refresh(org_a)
    login(admin_a)
    url = reverse("customers:duplicates")
    client.get(url)

    def measure(url=url):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        # The page's own reads: the pairs, the capped count, the customers with owners, the as-of time.
        reads = [
            q["sql"]
            for q in queries.captured_queries
            if "customer_duplicate" in q["sql"] or 'FROM "customers"' in q["sql"]
        ]
        assert len(reads) == 4, reads
        return response.context["page"], len(queries)

    few, few_queries = measure()
    _twins(org_a, 12, start=2, assigned_to=owner)
    refresh(org_a)
    many, many_queries = measure()
    assert (few.total, many.total) == (2, 14)
    assert few_queries == many_queries
    # A page further down (a cursor after the fourth pair, as a "next" link would carry): the same count.
    fourth = many.items[3]
    cursor = finding._encode((fourth.confidence, fourth.a_id, fourth.b_id), "next")
    deep, deep_queries = measure(f"{url}?cursor={cursor}")
    assert [p.a_id for p in deep.items] == [p.a_id for p in many.items[4:]]
    assert deep.has_previous and deep_queries == few_queries


def test_compare_page_shows_fields_picks_and_what_moves(client, login, pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    login(admin_a)
    response = client.get(reverse("customers:duplicates_merge", args=[target.pk, source.pk]))
    assert response.status_code == 200
    preview = response.context["preview"]
    rows = {row.name: row for row in preview.rows}
    assert rows["company_name"].same
    assert (rows["job_title"].a, rows["job_title"].b, rows["job_title"].picked) == ("", "CTO", "b")
    assert rows["address"].b == "Austin, US"
    moves = {move.label: (move.a, move.b) for move in preview.moves}
    assert moves["Interactions"] == (3, 2)
    assert moves["Segment memberships"] == (2, 2)
    assert moves["Score history entries"] == (1, 1)
    assert preview.tags == ["tech", "vip", "west"]
    assert preview.default_survivor == "a"  # the older customer
    assert {reason.kind for reason in preview.reasons} == {"name"}
    body = response.content.decode()
    assert 'data-confirm="' in body
    assert 'name="pick_job_title"' in body and 'name="pick_company_name"' not in body


def test_compare_page_query_count_does_not_grow_with_history(client, login, org_a, admin_a):
    a, b = factories.customer(org_a), factories.customer(org_a)
    login(admin_a)
    url = reverse("customers:duplicates_merge", args=[a.pk, b.pk])
    client.get(url)

    def measure():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        return len(queries)

    few = measure()
    for _ in range(5):
        factories.interaction(a)
        factories.interaction(b)
    _segment(org_a, "S1", a, b)
    _segment(org_a, "S2", b)
    assert measure() == few


def test_merging_through_the_page_reports_the_survivor_with_a_link(client, login, pair, org_a, admin_a):
    target, source = pair["target"], pair["source"]
    login(admin_a)
    url = reverse("customers:duplicates_merge", args=[source.pk, target.pk])  # the page's "a" is the source
    response = client.post(url, {"survivor": "b", "pick_job_title": "a", "pick_email": "b", "pick_name": "a"})
    assert response.status_code == 302
    assert response.url == reverse("customers:duplicates")
    with tenant_context(org_a.pk):
        merged = Customer.objects.get(pk=target.pk)
        assert not Customer.objects.filter(pk=source.pk).exists()
    assert (merged.job_title, merged.email, merged.first_name) == ("CTO", "jon@initech.example", "John")
    body = client.get(response.url).content.decode()
    assert 'data-testid="merge-result"' in body
    assert reverse("customers:detail", args=[target.pk]) in body
    assert f"{source.customer_number} was merged into John Smith ({target.customer_number})" in body
    # The banner is shown once.
    assert 'data-testid="merge-result"' not in client.get(response.url).content.decode()


def test_merge_form_without_a_survivor_changes_nothing(client, login, pair, org_a, admin_a):
    login(admin_a)
    url = reverse("customers:duplicates_merge", args=[pair["target"].pk, pair["source"].pk])
    response = client.post(url, {"pick_email": "b"})
    assert response.status_code == 200
    assert response.context["form"].errors
    with tenant_context(org_a.pk):
        assert Customer.objects.filter(pk__in=[pair["target"].pk, pair["source"].pk]).count() == 2


def test_foreign_unknown_or_identical_ids_are_404_and_change_nothing(client, login, org_a, org_b, admin_a):
    own, other_own = factories.customer(org_a), factories.customer(org_a)
    foreign = factories.customer(org_b, first_name="Secret", last_name="Person")
    unknown = "01890000-0000-7000-8000-000000000000"
    login(admin_a)
    for a, b in [(own.pk, foreign.pk), (foreign.pk, own.pk), (own.pk, unknown), (own.pk, own.pk)]:
        for name in ("customers:duplicates_merge", "customers:duplicates_dismiss"):
            url = reverse(name, args=[a, b])
            assert client.post(url, {"survivor": "a"}).status_code == 404, url
            if name == "customers:duplicates_merge":
                response = client.get(url)
                assert response.status_code == 404
                assert "Secret" not in response.content.decode()
    with system_context():
        assert Customer.objects.filter(pk__in=[own.pk, other_own.pk, foreign.pk]).count() == 3
        assert not DuplicateDismissal.objects.exists()


def test_not_a_duplicate_through_htmx_swaps_the_pair_and_undo_brings_it_back(client, login, org_a, admin_a):
    ((a, b),) = _twins(org_a, 1)
    refresh(org_a)
    first, second = sorted([a, b], key=lambda c: c.pk)
    login(admin_a)
    url = reverse("customers:duplicates_dismiss", args=[first.pk, second.pk])
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "marked as not duplicates" in response.content.decode()
    assert "No likely duplicates" in client.get(reverse("customers:duplicates")).content.decode()
    response = client.post(url, {"action": "undo"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'class="dup-pair' in body and 'data-reason="phone"' in body
    assert "1 likely duplicate pair" in client.get(reverse("customers:duplicates")).content.decode()
    # Without htmx: back to the list (or the page it came from).
    response = client.post(url, {"next": "/customers/duplicates/?cursor=x"})
    assert (response.status_code, response.url) == (302, "/customers/duplicates/?cursor=x")
    assert client.post(url, {"next": "https://evil.example/"}).url == reverse("customers:duplicates")


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.refresh_duplicate_pairs, "delay_on_commit", lambda **kw: calls.append(kw))
    return calls


def test_refresh_now_enqueues_a_refresh_once_and_the_page_polls_until_it_has_run(
    client, login, org_a, admin_a, enqueued
):
    ((a, _b),) = _twins(org_a, 1)
    first = refresh(org_a)
    url = reverse("customers:duplicates")
    login(admin_a)
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    body = response.content.decode()
    assert 'data-testid="refreshing"' in body and 'hx-trigger="every 2s"' in body
    assert 'data-testid="refresh-now"' not in body  # nothing to click while it runs
    # Clicking again while it waits adds no task; the full page shows the same state.
    client.post(url, HTTP_HX_REQUEST="true")
    assert len(enqueued) == 1
    page_body = client.get(url).content.decode()
    assert 'data-testid="refreshing"' in page_body and 'data-pair="' in page_body  # the old list stays
    since = first.computed_at.isoformat()
    poll = f"{url}?part=status&since={since}"
    response = client.get(poll, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-testid="refreshing"' in response.content.decode()
    assert "HX-Refresh" not in response
    # The worker runs it: the next poll has htmx reload the page, which shows the new time.
    c = factories.customer(org_a, first_name=a.first_name, last_name=a.last_name, phone=a.phone)
    tasks.refresh_duplicate_pairs(organization_id=str(org_a.pk))
    response = client.get(poll, HTTP_HX_REQUEST="true")
    assert (response.status_code, response["HX-Refresh"]) == (204, "true")
    response = client.get(url)
    status = response.context["status"]
    assert status.computed_at > first.computed_at and not status.pending
    assert response.context["page"].total == 3  # a, b and the newcomer c pair up three ways
    assert c.customer_number in response.content.decode()
    assert 'data-testid="refreshing"' not in response.content.decode()


def test_refresh_now_without_htmx_redirects_back_to_the_list(client, login, org_a, admin_a, enqueued):
    login(admin_a)
    response = client.post(reverse("customers:duplicates"))
    assert (response.status_code, response.url) == (302, reverse("customers:duplicates"))
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    body = client.get(response.url).content.decode()
    assert "Looking for duplicates" in body


def test_a_refresh_that_never_ran_is_shown_as_stuck_and_may_be_asked_for_again(
    client, login, org_a, admin_a, enqueued
):
    login(admin_a)
    url = reverse("customers:duplicates")
    client.post(url, HTTP_HX_REQUEST="true")
    raw(
        "UPDATE customer_duplicate_runs SET requested_at = requested_at - %s WHERE organization_id = %s",
        [duplicates.REFRESH_STALE_AFTER + datetime.timedelta(minutes=1), org_a.pk],
    )
    body = client.get(url).content.decode()
    assert 'data-testid="refresh-stale"' in body and "Is a background worker running?" in body
    assert 'hx-trigger="every 2s"' not in body  # no endless polling
    client.post(url, HTTP_HX_REQUEST="true")
    assert len(enqueued) == 2


def test_the_refresh_request_refuses_roles_that_may_not_merge(org_a, enqueued):
    rep = factories.user(org_a, role=Role.SALES_REP)
    with tenant_context(org_a.pk, user=rep), pytest.raises(PermissionDenied):
        duplicates.duplicate_pairs_refresh_request(actor=rep)
    assert enqueued == []


@pytest.mark.parametrize("role", Role.values)
def test_only_roles_that_may_merge_see_and_use_the_duplicates_pages(role, client, login, org_a):
    user = factories.user(org_a, role=role)
    a, b = factories.customer(org_a), factories.customer(org_a)
    login(user)
    allowed = role in (Role.ADMIN, Role.SALES_MANAGER, Role.SUPPORT_MANAGER, Role.MARKETING_MANAGER)
    home = client.get("/").content.decode()
    assert (reverse("customers:duplicates") in home) == allowed
    statuses = {
        client.get(reverse("customers:duplicates")).status_code,
        client.post(reverse("customers:duplicates"), HTTP_HX_REQUEST="true").status_code,
        client.get(reverse("customers:duplicates_merge", args=[a.pk, b.pk])).status_code,
        client.post(reverse("customers:duplicates_dismiss", args=[a.pk, b.pk])).status_code,
    }
    assert statuses == ({200, 302} if allowed else {403})
