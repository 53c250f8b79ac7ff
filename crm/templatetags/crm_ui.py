"""Template helpers of the layout: widgets with Bootstrap classes and ARIA state, without touching forms."""

from django import forms, template

register = template.Library()


def _css_for(widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.Select | forms.SelectMultiple):
        return "form-select"
    return "form-control"


@register.filter
def widget(bound_field):
    """Render a bound field's widget with the right Bootstrap class, `is-invalid` and `aria-invalid` when it
    has errors, and `aria-describedby` pointing at its error and help texts."""
    attrs = {
        "class": " ".join(
            filter(
                None, [bound_field.field.widget.attrs.get("class", ""), _css_for(bound_field.field.widget)]
            )
        )
    }
    described = []
    if bound_field.errors:
        attrs["class"] += " is-invalid"
        attrs["aria-invalid"] = "true"
        described.append(f"{bound_field.id_for_label}-error")
    if bound_field.help_text:
        described.append(f"{bound_field.id_for_label}-help")
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return bound_field.as_widget(attrs=attrs)


@register.filter
def isodate(value):
    """An ISO date or datetime string (as the 360 panels' JSON-ready data carries them) as a date/datetime,
    so templates can format it like any other: `{{ d.close_date|isodate|date:"M j, Y" }}`."""
    import datetime

    if not isinstance(value, str) or not value:
        return value
    try:
        return (datetime.datetime if "T" in value else datetime.date).fromisoformat(value)
    except ValueError:
        return value
