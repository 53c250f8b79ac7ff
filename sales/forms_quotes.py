"""Forms of the product catalogue, quotes (header, lines, decisions) and the quote and order lists."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from sales.models import Order, Product, Quote


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["sku", "name", "description", "unit_price", "currency", "tax_rate", "active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class ProductSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    active = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All")), ("1", _("Active")), ("0", _("Inactive"))],
    )


class QuoteForm(forms.Form):
    """The quote's header: title, valid-until date, terms (empty title and date: the service's defaults)."""

    title = forms.CharField(
        label=_("Title"), required=False, max_length=200, help_text=_("Defaults to the deal's name.")
    )
    valid_until = forms.DateField(
        label=_("Valid until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Defaults to the organization's validity period."),
    )
    terms = forms.CharField(
        label=_("Terms and notes"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args, instance: Quote | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {"title": instance.title, "valid_until": instance.valid_until, "terms": instance.terms},
            )
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["valid_until"].help_text = ""

    def changes(self) -> dict:
        data = self.cleaned_data
        changes = {"terms": data["terms"]}
        if data["title"].strip():
            changes["title"] = data["title"].strip()
        if data["valid_until"] is not None:
            changes["valid_until"] = data["valid_until"]
        return changes


PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class QuoteLineForm(forms.Form):
    """One line: a product (which fills what is left empty) or free text."""

    product = forms.ChoiceField(label=_("Product"), required=False)
    description = forms.CharField(label=_("Description"), required=False, max_length=300)
    quantity = forms.DecimalField(
        label=_("Quantity"), max_digits=12, decimal_places=3, min_value=Decimal("0.001"), initial=Decimal("1")
    )
    unit_price = forms.DecimalField(
        label=_("Unit price"), required=False, max_digits=14, decimal_places=2, min_value=Decimal("0")
    )
    discount_pct = forms.DecimalField(
        label=_("Discount %"), required=False, max_digits=5, decimal_places=2, validators=PERCENT
    )
    tax_rate = forms.DecimalField(
        label=_("Tax %"), required=False, max_digits=5, decimal_places=2, validators=PERCENT
    )

    def __init__(self, *args, products=(), with_product: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.products = {str(p.pk): p for p in products}
        if with_product:
            self.fields["product"].choices = [("", _("Free text line"))] + [
                (str(p.pk), f"{p.sku} — {p.name} ({p.unit_price} {p.currency})") for p in products
            ]
        else:
            del self.fields["product"]
        for name in ("quantity", "unit_price", "discount_pct", "tax_rate"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "class": "text-end"})
        if not with_product:  # a row of the line editor: compact inputs
            for bound in self.fields.values():
                bound.widget.attrs["class"] = f"{bound.widget.attrs.get('class', '')} form-control-sm".strip()

    def pick_with(self, url: str) -> None:
        """Picking a product fetches the form again from `url`, filled from the product (htmx)."""
        self.fields["product"].widget.attrs.update(
            {"hx-get": url, "hx-trigger": "change", "hx-target": "#quote-line-add", "hx-swap": "outerHTML"}
        )

    def clean(self):
        data = super().clean()
        product = self.products.get(data.get("product") or "")
        data["product"] = product
        if product is None:
            if "description" in self.fields and not (data.get("description") or "").strip():
                self.add_error("description", _("Describe the line (or pick a product)."))
            if data.get("unit_price") is None and "unit_price" not in self.errors:
                self.add_error("unit_price", _("Give a unit price (or pick a product)."))
        return data

    def for_add(self) -> dict:
        data = self.cleaned_data
        return {
            "product": data["product"],
            "description": data.get("description") or "",
            "quantity": data["quantity"],
            "unit_price": data.get("unit_price"),
            "discount_pct": data.get("discount_pct") or Decimal("0"),
            "tax_rate": data.get("tax_rate"),
        }

    def for_update(self) -> dict:
        data = self.cleaned_data
        return {
            "description": data.get("description") or "",
            "quantity": data["quantity"],
            "unit_price": data["unit_price"],
            "discount_pct": data.get("discount_pct") or Decimal("0"),
            "tax_rate": data.get("tax_rate") or Decimal("0"),
        }


class CommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class QuoteListForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Quote.Status.choices]
    )


class OrderListForm(forms.Form):
    q = forms.CharField(label=_("Order number or reference"), required=False, max_length=100)
    customer = forms.UUIDField(required=False, widget=forms.HiddenInput)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Order.Status.choices]
    )
