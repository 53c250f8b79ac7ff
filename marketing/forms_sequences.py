"""Forms of the sequence pages: the sequence's settings, one step (fields by kind), enrolling customers
by hand, and the enrollment list's status filter."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import LifecycleStage
from marketing.models import Enrollment, Step
from marketing.selectors import sequences as selectors
from marketing.services.sequences import MAX_TASK_DUE_DAYS, MAX_WAIT_DAYS


class SequenceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    description = forms.CharField(label=_("Description"), max_length=300, required=False)
    campaign = forms.ModelChoiceField(
        label=_("Campaign"),
        queryset=None,
        help_text=_("Its emails, opens and clicks count towards this campaign."),
    )
    enroll_segment = forms.ModelChoiceField(
        label=_("Enroll members of segment"),
        queryset=None,
        required=False,
        empty_label=_("No segment"),
        help_text=_("Members are enrolled automatically every few minutes while the sequence is active."),
    )
    enroll_min_score = forms.IntegerField(
        label=_("Enroll at lead score"),
        min_value=0,
        max_value=100,
        required=False,
        help_text=_("Customers at or above this lead score are enrolled automatically. Empty: no threshold."),
    )
    exit_on_unsubscribe = forms.BooleanField(label=_("Exit when the customer unsubscribes"), required=False)
    exit_on_conversion = forms.BooleanField(
        label=_("Exit on conversion (an opportunity of the customer is won)"), required=False
    )
    exit_on_reply = forms.BooleanField(label=_("Exit when the customer replies by email"), required=False)

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = selectors.campaign_choices(actor=actor)
        self.fields["enroll_segment"].queryset = selectors.segment_choices(actor=actor)


YES_NO = [("yes", _("Yes: make a VIP")), ("no", _("No: not a VIP"))]


class StepForm(forms.Form):
    """One step's settings. Only the fields of the step's kind are shown (KIND_FIELDS) and read."""

    template = forms.ModelChoiceField(label=_("Email template"), queryset=None, required=False)
    wait_days = forms.IntegerField(
        label=_("Wait (days)"), min_value=1, max_value=MAX_WAIT_DAYS, required=False
    )
    condition_kind = forms.ChoiceField(
        label=_("Condition"),
        required=False,
        choices=[
            ("score_at_least", _("Lead score is at least")),
            ("lifecycle_stage_in", _("Lifecycle stage is one of")),
            ("opened_previous", _("Opened the previous email")),
            ("clicked_previous", _("Clicked the previous email")),
        ],
    )
    condition_score = forms.IntegerField(
        label=_("Lead score at least"),
        min_value=0,
        max_value=100,
        required=False,
        help_text=_("For the lead score condition."),
    )
    condition_stages = forms.MultipleChoiceField(
        label=_("Lifecycle stages"),
        choices=LifecycleStage.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("For the lifecycle stage condition."),
    )
    else_position = forms.TypedChoiceField(
        label=_("If not, go to step"),
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("If the condition is met the customer goes on to the next step."),
    )
    update_field = forms.ChoiceField(
        label=_("Field to change"),
        required=False,
        choices=[
            ("lifecycle_stage", _("Lifecycle stage")),
            ("tags_add", _("Add a tag")),
            ("vip_status", _("VIP flag")),
            ("owner", _("Owner")),
        ],
    )
    update_stage = forms.ChoiceField(
        label=_("New lifecycle stage"), choices=[("", "—"), *LifecycleStage.choices], required=False
    )
    update_tag = forms.CharField(label=_("Tag to add"), max_length=50, required=False)
    update_vip = forms.ChoiceField(label=_("VIP"), choices=YES_NO, required=False)
    update_owner = forms.ModelChoiceField(label=_("New owner"), queryset=None, required=False)
    task_subject = forms.CharField(label=_("Task subject"), max_length=200, required=False)
    task_due_days = forms.IntegerField(
        label=_("Due in (days)"),
        min_value=0,
        max_value=MAX_TASK_DUE_DAYS,
        required=False,
        help_text=_("The task goes to the customer's owner; 0 is due the day the step runs."),
    )

    KIND_FIELDS = {
        Step.Kind.SEND_EMAIL: ("template",),
        Step.Kind.WAIT: ("wait_days",),
        Step.Kind.BRANCH: ("condition_kind", "condition_score", "condition_stages", "else_position"),
        Step.Kind.UPDATE_FIELD: ("update_field", "update_stage", "update_tag", "update_vip", "update_owner"),
        Step.Kind.CREATE_TASK: ("task_subject", "task_due_days"),
    }

    def __init__(self, *args, actor, kind: str, position: int, step_count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.kind_label = Step.Kind(kind).label
        self.fields["template"].queryset = selectors.template_choices(actor=actor)
        self.fields["update_owner"].queryset = selectors.owner_choices(actor=actor)
        self.fields["else_position"].choices = [
            ("", _("End the sequence")),
            *((n, _("Step %(n)d") % {"n": n}) for n in range(position + 1, step_count + 1)),
        ]

    @classmethod
    def initial_for(cls, step: Step) -> dict:
        condition, update = step.condition or {}, step.update or {}
        initial = {
            "template": step.template_id,
            "wait_days": step.wait_days,
            "condition_kind": condition.get("kind"),
            "else_position": step.else_position,
            "update_field": update.get("field"),
            "task_subject": step.task_subject,
            "task_due_days": step.task_due_days,
        }
        if condition.get("kind") == "score_at_least":
            initial["condition_score"] = condition.get("value")
        if condition.get("kind") == "lifecycle_stage_in":
            initial["condition_stages"] = condition.get("value")
        value = update.get("value")
        initial.update(
            {
                "lifecycle_stage": {"update_stage": value},
                "tags_add": {"update_tag": value},
                "vip_status": {"update_vip": "yes" if value else "no"},
                "owner": {"update_owner": value},
            }.get(update.get("field"), {})
        )
        return initial

    def visible_fields_for_kind(self) -> list:
        return [self[name] for name in self.KIND_FIELDS[self.kind]]

    def clean(self):
        data = super().clean()
        kind = self.kind
        if kind == Step.Kind.SEND_EMAIL and not data.get("template"):
            self.add_error("template", _("Pick the email template to send."))
        elif kind == Step.Kind.WAIT and not data.get("wait_days") and "wait_days" not in self.errors:
            self.add_error("wait_days", _("Wait at least 1 day."))
        elif kind == Step.Kind.BRANCH:
            condition = data.get("condition_kind")
            if not condition:
                self.add_error("condition_kind", _("Pick a condition."))
            elif condition == "score_at_least" and data.get("condition_score") is None:
                self.add_error("condition_score", _("Give the lead score to reach."))
            elif condition == "lifecycle_stage_in" and not data.get("condition_stages"):
                self.add_error("condition_stages", _("Pick one or more lifecycle stages."))
        elif kind == Step.Kind.UPDATE_FIELD:
            required = {
                "lifecycle_stage": "update_stage",
                "tags_add": "update_tag",
                "vip_status": "update_vip",
                "owner": "update_owner",
            }
            field = data.get("update_field")
            if not field:
                self.add_error("update_field", _("Pick the field to change."))
            elif not data.get(required[field]):
                self.add_error(required[field], _("Give the new value."))
        elif kind == Step.Kind.CREATE_TASK:
            if not (data.get("task_subject") or "").strip():
                self.add_error("task_subject", _("Give the task a subject."))
            if data.get("task_due_days") is None and "task_due_days" not in self.errors:
                self.add_error("task_due_days", _("Say in how many days the task is due."))
        return data

    def step_fields(self) -> dict:
        """The cleaned data as the step service's fields (only those of the step's kind)."""
        data = self.cleaned_data
        kind = self.kind
        if kind == Step.Kind.SEND_EMAIL:
            return {"template": data["template"]}
        if kind == Step.Kind.WAIT:
            return {"wait_days": data["wait_days"]}
        if kind == Step.Kind.BRANCH:
            condition = {"kind": data["condition_kind"]}
            if condition["kind"] == "score_at_least":
                condition["value"] = data["condition_score"]
            elif condition["kind"] == "lifecycle_stage_in":
                condition["value"] = list(data["condition_stages"])
            return {"condition": condition, "else_position": data.get("else_position")}
        if kind == Step.Kind.UPDATE_FIELD:
            field = data["update_field"]
            value = {
                "lifecycle_stage": data.get("update_stage"),
                "tags_add": data.get("update_tag"),
                "vip_status": data.get("update_vip") == "yes",
                "owner": str(data["update_owner"].pk) if data.get("update_owner") else None,
            }[field]
            return {"update": {"field": field, "value": value}}
        return {"task_subject": data["task_subject"], "task_due_days": data["task_due_days"]}


class StepMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", _("Up")), ("down", _("Down"))])


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[
            ("active", _("Activate")),
            ("paused", _("Pause")),
            ("archived", _("Archive")),
        ]
    )


class EnrollForm(forms.Form):
    customers = forms.MultipleChoiceField(
        label=_("Customers"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Pick one or more customers.")},
    )

    def __init__(self, *args, options=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Any id may be posted (the picker lists a search's results); the service keeps only the
        # organization's customers.
        posted = self.data.getlist("customers") if hasattr(self.data, "getlist") else []
        self.fields["customers"].choices = [(str(c.pk), str(c)) for c in options] + [(v, v) for v in posted]


class EnrollmentFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("All")), *Enrollment.Status.choices], required=False
    )
