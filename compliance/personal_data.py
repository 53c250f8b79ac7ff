"""What personal data the compliance app holds (compliance/registry.py): the subject's own privacy
requests, consent history and the log of who viewed their data.

A request row stays as the record that the request was honoured: who asked is pseudonymized, what they
wrote redacted, an export ZIP deleted from storage (it is a copy of everything). Staff's own notes on the
handling (extension and rejection reasons) and the result (receipts: customer numbers and row counts) are
the compliance record itself. The CCPA request's state of residence is kept like the profile's state: it is
why the request applied or not. The access log is append-only and holds no personal values by design
(compliance/access_log.py writes what was read, never the data), so it is exported, not erased.
"""

from compliance import models
from compliance.registry import Category, Erase, NotPersonal, PersonalData, PersonalField, register

C = Category
KEEP = Erase.KEEP
HANDLING = "staff's account of how the request was handled: the record that it was honoured"


def _request_fields(*extra: PersonalField) -> tuple[PersonalField, ...]:
    return (
        PersonalField("request_type", KEEP),
        PersonalField("status", KEEP),
        PersonalField("received_at", KEEP),
        PersonalField("completed_at", KEEP),
        PersonalField("requester_name", Erase.PSEUDONYM),
        PersonalField("requester_email", Erase.PSEUDONYM),
        PersonalField("details", Erase.REDACT),
        PersonalField("export_file", Erase.BLANK, stored_file=True),
        *extra,
    )


_REQUEST_NOT_PERSONAL = {
    "extension_reason": HANDLING,
    "rejection_reason": HANDLING,
    "verification_code_hash": "a keyed hash of a random one-time code",
    "result": "what was done: receipts (customer numbers, row counts), export counts, the fields rectified",
}

register(
    PersonalData(
        model=models.GdprRequest,
        subject="customer",
        label="gdpr_requests",
        fields=_request_fields(PersonalField("rectification", Erase.REDACT)),
        not_personal=_REQUEST_NOT_PERSONAL,
    ),
    PersonalData(
        model=models.CcpaRequest,
        subject="customer",
        label="ccpa_requests",
        fields=_request_fields(PersonalField("resident_state", KEEP, C.GEOLOCATION)),
        not_personal=_REQUEST_NOT_PERSONAL | {"data_categories": "CCPA category codes"},
    ),
    PersonalData(
        model=models.ConsentRecord,
        subject="customer",
        label="consent_records",
        fields=(
            PersonalField("purpose", KEEP),
            PersonalField("granted", KEEP),
            PersonalField("source", KEEP),
            PersonalField("recorded_at", KEEP),
            PersonalField("proof", Erase.REDACT),
            PersonalField("ip_address", Erase.BLANK, C.INTERNET),
        ),
    ),
    PersonalData(
        model=models.AccessLogEntry,
        subject="customer",
        label="data_access_log",
        fields=(
            PersonalField("occurred_at", KEEP, C.INTERNET),
            PersonalField("action", KEEP, C.INTERNET),
            PersonalField("description", KEEP, C.INTERNET),
        ),
        not_personal={
            "request_id": "the id of the staff request that read the data",
            "ip_address": "the staff member's address, not the subject's",
        },
    ),
    NotPersonal(model=models.PrivacySettings, fields={}),
    NotPersonal(
        model=models.AnonymizationRun, fields={"error": "why a run stopped (an exception's message)"}
    ),
)
