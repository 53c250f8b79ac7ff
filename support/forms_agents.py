"""Forms of the workload page: an agent's capacity and whether routing gives them tickets, and rebalancing
(moving chosen tickets from one agent to another)."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from crm.models import User
from support.models import DONE_STATUSES, Ticket


class CapacityForm(forms.Form):
    capacity = forms.IntegerField(
        label=_("Capacity"),
        validators=[MinValueValidator(0), MaxValueValidator(500)],
        help_text=_("Open tickets at most; routing gives no new ticket beyond it."),
        widget=forms.NumberInput(attrs={"min": 0, "max": 500, "class": "form-control form-control-sm"}),
    )
    accepting = forms.BooleanField(
        label=_("Accepting new tickets"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )


class RebalanceForm(forms.Form):
    """Tickets of `agent` (active ones of the organization only) to move to another person who works
    tickets."""

    tickets = forms.ModelMultipleChoiceField(
        label=_("Tickets"),
        queryset=Ticket.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick the tickets to move.")},
    )
    to_agent = forms.ModelChoiceField(label=_("Move to"), queryset=User.objects.none(), empty_label=None)
    force = forms.BooleanField(
        label=_("Even past their capacity"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, agent: User, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tickets"].queryset = Ticket.objects.filter(
            organization_id=agent.organization_id, assigned_to=agent
        ).exclude(status__in=DONE_STATUSES)
        self.fields["to_agent"].queryset = User.objects.filter(
            organization_id=agent.organization_id, pk__in=[t.user.pk for t in targets]
        )
        self.fields["to_agent"].choices = [
            (t.user.pk, f"{t.user} ({t.open_tickets}/{t.capacity})") for t in targets
        ]
        self.fields["to_agent"].widget.attrs["class"] = "form-select"
