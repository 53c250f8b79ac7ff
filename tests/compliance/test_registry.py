"""The personal-data registry covers every model of our apps: each text-like field is declared personal or not
personal (with a reason), and every declared field exists."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from compliance import registry
from compliance.registry import Erase, NotPersonal, PersonalData, PersonalField

OUR_APPS = ("crm", "customers", "sales", "support", "marketing", "compliance")


def _our_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models() if model._meta.app_label in OUR_APPS]


def _throwaway_model(name: str, **fields) -> type[models.Model]:
    """A model class built for the test only (never migrated), in an app of ours."""
    attrs = {
        "__module__": "compliance.models",
        "Meta": type("Meta", (), {"app_label": "compliance"}),
        **fields,
    }
    model = type(name, (models.Model,), attrs)
    # Built models register themselves with the app registry: take it out again so nothing else sees it.
    del apps.all_models["compliance"][name.lower()]
    apps.clear_cache()
    return model


def test_every_text_like_field_of_every_model_of_our_apps_is_declared():
    assert registry.undeclared_fields(_our_models()) == []


def test_every_declared_field_exists_on_its_model():
    assert registry.unknown_fields() == []


def test_every_model_of_our_apps_is_declared_once():
    declared = [d.model for d in registry.personal_data()] + [d.model for d in registry.not_personal()]
    assert len(declared) == len(set(declared))
    assert {m for m in _our_models() if not m._meta.proxy} <= set(declared)


def test_an_undeclared_model_and_an_undeclared_field_fail_the_check():
    undeclared = _throwaway_model("ShadowContact", nickname=models.CharField(max_length=50))
    assert registry.undeclared_fields([undeclared]) == ["compliance.ShadowContact"]

    half = _throwaway_model(
        "HalfDeclared",
        nickname=models.CharField(max_length=50),
        notes=models.TextField(),
        birthday=models.DateField(null=True),
        kind=models.CharField(max_length=5, choices=[("a", "A")]),
        count=models.IntegerField(default=0),
    )
    registry.register(PersonalData(model=half, subject="", label="half", fields=(PersonalField("nickname"),)))
    try:
        # Text and dates of birth must be declared; codes (choices) and numbers need not.
        assert registry.undeclared_fields([half]) == [
            "compliance.HalfDeclared.notes",
            "compliance.HalfDeclared.birthday",
        ]
    finally:
        registry._REGISTRY.pop(half)


def test_a_field_declared_not_personal_with_a_reason_passes_the_check():
    model = _throwaway_model("Leaflet", title=models.CharField(max_length=50), body=models.TextField())
    registry.register(NotPersonal(model=model, fields={"title": "marketing copy", "body": "marketing copy"}))
    try:
        assert registry.undeclared_fields([model]) == []
    finally:
        registry._NOT_PERSONAL.pop(model)


def test_a_declared_field_that_does_not_exist_is_reported():
    model = _throwaway_model("Renamed", full_name=models.CharField(max_length=50))
    registry.register(
        PersonalData(
            model=model,
            subject="",
            label="renamed",
            fields=(PersonalField("name", Erase.PSEUDONYM),),
            not_personal={"nick": "gone"},
        )
    )
    try:
        assert {"compliance.Renamed.name", "compliance.Renamed.nick"} <= set(registry.unknown_fields())
    finally:
        registry._REGISTRY.pop(model)


def test_declaring_a_model_twice_is_refused():
    from customers.models import Customer

    with pytest.raises(ValueError, match="declared twice"):
        registry.register(NotPersonal(model=Customer, fields={}))


def test_every_erased_field_can_take_its_erased_value():
    """BLANK needs a nullable or text column; the SQL for each erasable field builds."""
    from compliance.erasure.statements import statement_for

    for declaration in registry.personal_data():
        statement_for(declaration, label="Erased customer")  # raises ImproperlyConfigured if not


def test_labels_are_unique_file_names():
    labels = [d.label for d in registry.personal_data()]
    assert len(labels) == len(set(labels))
    assert all(label.replace("_", "").isalnum() for label in labels)
