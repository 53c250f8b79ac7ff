"""Merge fields (marketing/merge.py): every allow-listed field from a hand-made customer, owner and
organization; fallbacks; escaping in HTML and not in text; validation of unknown fields, tags and malformed
fields; attempts to reach other data or settings render nothing; the subject stays one header line; and the
plain text generated from HTML."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from crm.models import Organization, User
from customers.models import Customer
from marketing import merge

XSS = "<script>alert(1)</script>"


def owner(**fields) -> User:
    defaults = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@acme.test",
        "job_title": "Account executive",
        "email_signature": "Grace Hopper\nAcme sales",
    }
    return User(**{**defaults, **fields})


def customer(**fields) -> Customer:
    defaults = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Engines & Co",
        "email": "ada@engines.test",
        "job_title": "Analyst",
        "city": "London",
        "country": "GB",
        "number": 42,
    }
    made = Customer(**{**defaults, **fields})
    if "assigned_to" not in fields:
        made.assigned_to = owner()
    return made


ORG = Organization(name="Acme")
UNSUBSCRIBE = "https://crm.test/m/u/token/"

# Every field of FIELDS and what it reads from the hand-made rows above.
EXPECTED = {
    "customer.first_name": "Ada",
    "customer.last_name": "Lovelace",
    "customer.full_name": "Ada Lovelace",
    "customer.company_name": "Engines & Co",
    "customer.email": "ada@engines.test",
    "customer.job_title": "Analyst",
    "customer.city": "London",
    "customer.country": "GB",
    "customer.customer_number": "C-000042",
    "owner.name": "Grace Hopper",
    "owner.first_name": "Grace",
    "owner.email": "grace@acme.test",
    "owner.job_title": "Account executive",
    "owner.signature": "Grace Hopper\nAcme sales",
    "organization.name": "Acme",
    "unsubscribe_url": UNSUBSCRIBE,
}


def values(**customer_fields) -> dict[str, str]:
    return merge.values_for(
        customer=customer(**customer_fields), organization=ORG, unsubscribe_url=UNSUBSCRIBE
    )


def test_the_expected_table_covers_every_allow_listed_field():
    assert set(EXPECTED) == merge.FIELD_NAMES == set(merge.example_values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_field_renders_its_value_in_text(name):
    assert merge.render_string(f"[{{{{ {name} }}}}]", values(), html=False) == f"[{EXPECTED[name]}]"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_field_renders_its_value_escaped_in_html(name):
    expected = EXPECTED[name].replace("&", "&amp;")
    if name == "owner.signature":
        expected = expected.replace("\n", "<br>\n")  # the signature keeps its lines
    assert merge.render_string(f"<p>{{{{{name}}}}}</p>", values(), html=True) == f"<p>{expected}</p>"


def test_every_field_validates():
    merge.validate(" ".join(f"{{{{ {name} }}}}" for name in EXPECTED))


@pytest.mark.parametrize(
    "source",
    [
        'Hi {{ customer.first_name|default:"there" }}!',
        "Hi {{ customer.first_name|default:'there' }}!",
        'Hi {{customer.first_name|default:"there"}}!',
        "Hi {{ customer.first_name | default : 'there' }}!",
    ],
)
@pytest.mark.parametrize("html", [True, False])
def test_an_empty_value_falls_back_with_double_or_single_quotes(source, html):
    assert merge.render_string(source, values(first_name=""), html=html) == "Hi there!"
    assert merge.render_string(source, values(), html=html) == "Hi Ada!"


def test_without_a_fallback_an_empty_value_is_empty():
    assert merge.render_string("Hi {{ customer.first_name }}!", values(first_name=""), html=False) == "Hi !"


def test_no_owner_falls_back_for_the_owner_fields():
    source = '{{ owner.name|default:"The Acme team" }} / {{ owner.signature }}'
    rendered = merge.render_string(source, values(assigned_to=None), html=False)
    assert rendered == "The Acme team / "


def test_a_fallback_is_escaped_in_html_too():
    source = "{{ customer.first_name|default:'<b>friend</b>' }}"
    assert merge.render_string(source, values(first_name=""), html=True) == "&lt;b&gt;friend&lt;/b&gt;"


def test_a_customer_named_script_is_escaped_in_html_and_raw_in_text():
    rendered = merge.render(
        subject="Hello {{ customer.first_name }}",
        html_body="<p>Hello {{ customer.first_name }}</p><a href='{{ customer.email }}'>x</a>",
        text_body="Hello {{ customer.first_name }}",
        values=values(first_name=XSS, email="a'b\"c@x.test"),
    )
    assert XSS not in rendered.html
    assert "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;</p>" in rendered.html
    assert "href='a&#x27;b&quot;c@x.test'" in rendered.html  # no breaking out of an attribute either
    assert rendered.text == f"Hello {XSS}"  # plain text: shown as text by mail clients, never parsed
    assert rendered.subject == f"Hello {XSS}"  # a header: escaping would show entities to the reader


def test_a_value_that_looks_like_a_merge_field_stays_literal():
    rendered = merge.render_string(
        "{{ customer.first_name }}", values(first_name="{{ owner.email }}{% load x %}"), html=False
    )
    assert rendered == "{{ owner.email }}{% load x %}"


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ customer.nickname }}", "customer.nickname"),
        ("{{ customer.first_name }} {{ unsubscribe }}", "unsubscribe"),
        ("{{ owner.password }}", "owner.password"),
    ],
)
def test_unknown_fields_are_refused_by_name(source, named):
    with pytest.raises(ValidationError) as error:
        merge.validate(source)
    assert error.value.messages == [f"Unknown merge field: {named}"]


def test_validate_names_every_problem_once():
    source = "{{ a.b }} {{ a.b }} {% if x %} {# note #} {{ customer.first_name|upper }} {{ customer.city"
    with pytest.raises(ValidationError) as error:
        merge.validate(source)
    assert error.value.messages == [
        "Unknown merge field: a.b",
        "Template tags are not allowed: {% if x %}",
        "Comments are not allowed: {# note #}",
        "Not a merge field: {{ customer.first_name|upper }}",
        "Unclosed or stray merge field braces: {{",
    ]


# Attempts to reach other data, settings or code. Each is refused by validate, and rendering it (as if it had
# slipped past validation) yields nothing from outside the allow-list.
ATTACKS = [
    "{% load static %}",
    "{% debug %}",
    "{% include 'base.html' %}",
    "{{ settings.SECRET_KEY }}",
    "{{ customer.organization.name }}",
    "{{ customer.__class__ }}",
    "{{ customer.__class__.__mro__ }}",
    "{{ customer.email|safe }}",
    "{{ customer.email|escape }}",
    "{{ customer.first_name|default:customer.email }}",
    "{{ customer.assigned_to.password }}",
    "{{ owner.password }}",
    "{{ request.user.email }}",
    "{{ customer }}",
    "{{ customer.first_name.upper }}",
    "{{ '{{' }}",
    '{{ customer.first_name|default:"{{ settings.SECRET_KEY }}" }}',
]


@pytest.mark.parametrize("source", ATTACKS)
def test_attempts_to_reach_other_data_are_refused(source):
    with pytest.raises(ValidationError):
        merge.validate(source)


@pytest.mark.parametrize("source", ATTACKS)
@pytest.mark.parametrize("html", [True, False])
def test_attempts_to_reach_other_data_render_nothing_outside_the_allow_list(source, html, settings):
    settings.SECRET_KEY = "the-secret-key-value"
    assigned = owner()
    assigned.set_password("owner-password")
    leaked = [
        "the-secret-key-value",
        assigned.password,
        "ada@engines.test",  # the email is reachable only as {{ customer.email }}
        "Customer",
        "class",
        "mro",
        "ADA",
    ]
    rendered = merge.render_string(
        f"[{source}]",
        merge.values_for(customer=customer(assigned_to=assigned), organization=ORG, unsubscribe_url=""),
        html=html,
    )
    assert not any(secret in rendered for secret in leaked), rendered
    assert "{%" not in rendered


def test_the_subject_is_one_line_whatever_the_values():
    rendered = merge.render(
        subject="Hi {{ customer.first_name }}\r\nBcc: victim@x.test {{ owner.signature }}",
        html_body="",
        text_body="",
        values=values(first_name="Ada\r\nBcc: evil@x.test\u2028X"),
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject and "\u2028" not in rendered.subject
    assert rendered.subject == "Hi Ada Bcc: evil@x.test X Bcc: victim@x.test Grace Hopper Acme sales"


def test_links_in_returns_the_literal_links_only():
    html = (
        "<a href=\"https://example.com/a\">A</a> <a href='http://example.com/b?x=1'>B</a>"
        '<a href="https://example.com/a">again</a> <a href="{{ unsubscribe_url }}">U</a>'
        '<a href="mailto:x@y.test">M</a>'
    )
    assert merge.links_in(html) == ["https://example.com/a", "http://example.com/b?x=1"]


def test_has_unsubscribe_link():
    assert merge.has_unsubscribe_link('<a href="{{ unsubscribe_url }}">Unsubscribe</a>')
    assert merge.has_unsubscribe_link('<a href="{{unsubscribe_url}}">Unsubscribe</a>')
    assert not merge.has_unsubscribe_link("<p>No way out</p>")


def test_example_values_render_the_preview_without_a_customer():
    rendered = merge.render_string(
        "{{ customer.first_name }} {{ owner.name }}", merge.example_values(), html=True
    )
    assert rendered == "Ada Grace Hopper"


# --- Plain text from HTML ----------------------------------------------------------------------------------


def test_text_from_html_keeps_paragraphs_breaks_lists_links_and_merge_fields():
    html = """<html><head><title>Title</title><style>p { color: red }</style></head><body>
    <h1>Hello {{ customer.first_name|default:"there" }}</h1>
    <p>Our   offer &amp; more:<br>line two</p>
    <ul><li>One</li><li>Two</li></ul>
    <p><a href="https://example.com/offer?a=1&amp;b=2">See the offer</a> or https://example.com/x</p>
    <table><tr><td>A</td><td>B</td></tr></table>
    <script>alert(1)</script>
    <p><a href="{{ unsubscribe_url }}">Unsubscribe</a> <img src="logo.png" alt="Acme logo"></p>
    </body></html>"""
    assert merge.text_from_html(html) == (
        'Hello {{ customer.first_name|default:"there" }}\n'
        "\n"
        "Our offer & more:\n"
        "line two\n"
        "\n"
        "- One\n"
        "- Two\n"
        "\n"
        "See the offer (https://example.com/offer?a=1&b=2) or https://example.com/x\n"
        "\n"
        "A B\n"
        "\n"
        "Unsubscribe ({{ unsubscribe_url }}) Acme logo"
    )


def test_text_from_html_does_not_repeat_a_link_that_is_its_own_text_and_skips_anchors():
    html = '<p><a href="https://x.test/">https://x.test/</a> <a href="#top">Top</a></p>'
    assert merge.text_from_html(html) == "https://x.test/ Top"


def test_text_from_html_of_plain_text_or_nothing():
    assert merge.text_from_html("") == ""
    assert merge.text_from_html("Just words") == "Just words"


def test_render_generates_an_empty_text_part_from_the_html():
    rendered = merge.render(
        subject="S",
        html_body="<p>Hi {{ customer.first_name }} &amp; co</p><p>{{ owner.signature }}</p>",
        text_body="  ",
        values=values(),
    )
    assert rendered.text == "Hi Ada & co\n\nGrace Hopper\nAcme sales"
    assert merge.render(subject="S", html_body="<p>HTML</p>", text_body="Own", values=values()).text == "Own"


def test_generated_text_validates_and_renders_like_the_html():
    html = (
        '<p>Hi {{ customer.first_name|default:"there" }}</p><p><a href="{{ unsubscribe_url }}">Stop</a></p>'
    )
    text = merge.text_from_html(html)
    merge.validate(text)
    assert merge.render_string(text, values(), html=False) == f"Hi Ada\n\nStop ({UNSUBSCRIBE})"
