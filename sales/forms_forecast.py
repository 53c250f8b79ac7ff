"""Forms of the forecast area: the forecast page's owner and horizon, the drill-down's parameters, the quota
grid (one Decimal field per rep and month)."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from sales.forecasting import MEASURES
from sales.services.quotas import MAX_QUOTA

MONTH_CHOICES = [(3, _("3 months")), (6, _("6 months")), (12, _("12 months"))]
ALL_OWNERS = "all"


class ForecastFilterForm(forms.Form):
    """`owner`: "all" for the organization, a user id, or empty for the default (see the view)."""

    owner = forms.ChoiceField(label=_("Owner"), required=False)
    months = forms.TypedChoiceField(
        label=_("Months"), choices=MONTH_CHOICES, coerce=int, required=False, empty_value=3
    )

    def __init__(self, *args, owners=(), can_pick: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(ALL_OWNERS, _("Whole organization"))] if can_pick else []
        choices += [(str(user.pk), str(user)) for user in owners]
        self.fields["owner"].choices = choices
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-select form-select-sm w-auto")


def parse_month(value: str) -> datetime.date | None:
    """ "2026-03" -> 2026-03-01; None for anything else."""
    try:
        year, month = (int(part) for part in value.split("-"))
        return datetime.date(year, month, 1)
    except (ValueError, TypeError):
        return None


class DrilldownForm(forms.Form):
    """The deals behind one figure of the forecast: which figure, which month (none: the whole forecast),
    whose deals, and how many months the forecast covers (the risks' horizon)."""

    measure = forms.ChoiceField(choices=[(m, m) for m in MEASURES])
    month = forms.CharField(required=False, max_length=7)
    owner = forms.CharField(required=False, max_length=36)
    months = forms.TypedChoiceField(choices=MONTH_CHOICES, coerce=int, required=False, empty_value=3)

    def clean_month(self) -> datetime.date | None:
        value = self.cleaned_data["month"]
        if not value:
            return None
        month = parse_month(value)
        if month is None:
            raise forms.ValidationError(_("Give the month as YYYY-MM."))
        return month

    def clean_owner(self) -> uuid.UUID | str | None:
        value = self.cleaned_data["owner"]
        if not value:
            return None
        if value == ALL_OWNERS:
            return ALL_OWNERS
        try:
            return uuid.UUID(value)
        except ValueError as error:
            raise forms.ValidationError(_("Unknown owner.")) from error


def quota_field_name(user_id, month: datetime.date) -> str:
    return f"q_{user_id}_{month:%Y-%m}"


class QuotaGridForm(forms.Form):
    """One optional amount per (rep, month). Blank clears the quota; 0 is a quota of zero."""

    def __init__(self, *args, users, months: list[datetime.date], current: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.users, self.months = list(users), months
        for user in self.users:
            for month in months:
                name = quota_field_name(user.pk, month)
                value = current.get((user.pk, month))
                self.fields[name] = forms.DecimalField(
                    label=_("Quota of %(user)s for %(month)s") % {"user": user, "month": f"{month:%Y-%m}"},
                    required=False,
                    min_value=Decimal("0"),
                    max_value=MAX_QUOTA,
                    max_digits=14,
                    decimal_places=2,
                    initial=value,
                    # What the manager saw is posted back with the grid: only the cells they changed are
                    # saved, so a colleague's save in between is not overwritten with stale values.
                    show_hidden_initial=True,
                    widget=forms.NumberInput(
                        attrs={"class": "form-control form-control-sm text-end quota-input", "step": "0.01"}
                    ),
                )
                self.fields[name].key = (user.pk, month)

    def rows(self) -> list[dict]:
        return [
            {"user": user, "cells": [self[quota_field_name(user.pk, month)] for month in self.months]}
            for user in self.users
        ]

    def changed_values(self) -> dict[tuple, Decimal | None]:
        """The cells the manager changed, as (user id, month) -> amount or None (after is_valid)."""
        return {self.fields[name].key: self.cleaned_data[name] for name in self.changed_data}
