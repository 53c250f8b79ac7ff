"""The GDPR and CCPA request workflow: intake, identity verification, extension, rejection, processing
(export, erasure, rectification, restriction, objection, opt-outs) and the deadline reminders.

    received --send code--> verifying --code / staff check--> processing --done--> completed
        \\____________________ reject (reason) ______________________/      \\--> rejected
    CCPA from outside California: not_applicable at intake.
"""

from compliance.services.requests.common import (
    RECTIFIABLE_FIELDS,
    kind_of,
    model_for,
)
from compliance.services.requests.deadlines import privacy_deadlines_remind
from compliance.services.requests.intake import (
    request_assign,
    request_create,
    request_link_customer,
)
from compliance.services.requests.processing import request_process, request_run
from compliance.services.requests.verification import (
    request_mark_verified,
    request_send_verification,
    request_verify,
)
from compliance.services.requests.workflow import request_extend, request_reject

__all__ = [
    "RECTIFIABLE_FIELDS",
    "kind_of",
    "model_for",
    "privacy_deadlines_remind",
    "request_assign",
    "request_create",
    "request_extend",
    "request_link_customer",
    "request_mark_verified",
    "request_process",
    "request_reject",
    "request_run",
    "request_send_verification",
    "request_verify",
]
