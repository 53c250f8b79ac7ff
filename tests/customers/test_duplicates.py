"""Duplicates and merge: which pairs are found and why (recomputed here from the rules, with our own trigram
similarity), the merge (every record kept, field picks, tags, audit trail, atomicity, tenancy), and the
pages (404s, roles, htmx dismiss and undo, constant query counts)."""

from __future__ import annotations

import datetime
import itertools
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog
from crm.permissions import Role
from crm.tenancy import system_context, tenant_context
from customers import duplicates, merging
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


def all_pairs(org) -> list[duplicates.DuplicatePair]:
    with tenant_context(org.pk):
        return duplicates.find_duplicates(organization_id=org.pk, per_page=1000).items


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


def test_pairs_marked_not_a_duplicate_are_left_out_until_the_mark_is_undone(people, org_a, admin_a):
    p = people
    with tenant_context(org_a.pk, user=admin_a):
        duplicate_dismiss(a=p["john"], b=p["jon"], actor=admin_a)  # either order
        duplicate_dismiss(a=p["jon"], b=p["john"], actor=admin_a)  # idempotent
        assert DuplicateDismissal.objects.count() == 1
    assert key(p["jon"], p["john"]) not in as_found(all_pairs(org_a))
    assert len(all_pairs(org_a)) == 4
    with tenant_context(org_a.pk, user=admin_a):
        assert duplicate_restore(a=p["jon"], b=p["john"], actor=admin_a) is True
    assert key(p["jon"], p["john"]) in as_found(all_pairs(org_a))


def test_pairs_never_cross_organizations(people, org_a, org_b):
    twin = factories.customer(
        org_b, first_name="Paula", last_name="Gomez", company_name="Globex", phone="5550102000"
    )
    assert all(twin.pk not in pair_key for pair_key in as_found(all_pairs(org_a)))
    assert all_pairs(org_b) == []


def test_keyset_pages_walk_every_pair_once_forwards_and_back(org_a):
    _twins(org_a, 7)
    everything = [(p.a_id, p.b_id) for p in all_pairs(org_a)]
    assert len(everything) == 7
    seen, pages, cursor = [], [], None
    with tenant_context(org_a.pk):
        while True:
            page = duplicates.find_duplicates(organization_id=org_a.pk, cursor=cursor, per_page=3)
            assert page.total == 7
            pages.append(page)
            seen += [(p.a_id, p.b_id) for p in page.items]
            if not page.has_next:
                break
            cursor = page.next_cursor
        assert seen == everything
        assert [len(page.items) for page in pages] == [3, 3, 1]
        back = duplicates.find_duplicates(
            organization_id=org_a.pk, cursor=pages[-1].previous_cursor, per_page=3
        )
        assert [(p.a_id, p.b_id) for p in back.items] == everything[3:6]
        assert back.has_next and back.has_previous
        forged = duplicates.find_duplicates(organization_id=org_a.pk, cursor="forged", per_page=3)
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


def test_list_page_has_an_empty_state(client, login, org_a, admin_a):
    factories.customer(org_a)
    login(admin_a)
    body = client.get(reverse("customers:duplicates")).content.decode()
    assert 'data-testid="duplicates-empty"' in body
    assert "No likely duplicates" in body


def test_list_page_query_count_does_not_grow_with_pairs(client, login, org_a, admin_a):
    owner = factories.user(org_a, role=Role.SALES_REP)
    _twins(org_a, 2, assigned_to=owner)
    login(admin_a)
    url = reverse("customers:duplicates")
    client.get(url)

    def measure():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        return response.context["page"].total, len(queries)

    few, few_queries = measure()
    _twins(org_a, 12, start=2, assigned_to=owner)
    many, many_queries = measure()
    assert (few, many) == (2, 14)
    assert few_queries == many_queries


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
        client.get(reverse("customers:duplicates_merge", args=[a.pk, b.pk])).status_code,
        client.post(reverse("customers:duplicates_dismiss", args=[a.pk, b.pk])).status_code,
    }
    assert statuses == ({200, 302} if allowed else {403})
