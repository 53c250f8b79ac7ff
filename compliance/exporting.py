"""A data subject's export (GDPR access and portability, the CCPA right to know) and its signed download link.

`export_customer` builds one ZIP from the personal-data registry only (compliance/registry.py), so the
export covers exactly what every app declares and nothing else:
- `data.json`: one object, `{"subject": {...}, "sections": {label: [row, ...]}}`;
- `<label>.csv` per declaration: a header of `id` and the declared field names, one line per row;
- `README.txt`: what each file is.

Each section is one query over its own table, filtered by the declaration's subject lookup (never a join of
several fact tables side by side, which multiplies rows: the design document's export did). Rows are read
in chunks from a server-side cursor and written straight into a temporary file, so a subject with a long
history never sits in memory; the finished ZIP is saved to the default storage under
`privacy-exports/<organization id>/<uuid>.zip`.

`export_download_url` signs (request kind, id, organization) with a TimestampSigner; the public view
checks the signature (404 when it does not verify) and its age (410 once older than
`PRIVACY_EXPORT_LINK_DAYS`, default 7).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import tempfile
import uuid
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from compliance.models import CcpaRequest, GdprRequest
from compliance.registry import PersonalData, SubjectIdentity, personal_data
from customers.exporting import spreadsheet_safe
from customers.models import Customer

SALT = "compliance.export"
STORAGE_PREFIX = "privacy-exports"
CHUNK_SIZE = 2000
REQUEST_MODELS: dict[str, type[GdprRequest] | type[CcpaRequest]] = {"gdpr": GdprRequest, "ccpa": CcpaRequest}

README = """\
Your personal data held by {organization}
Prepared {generated} for {request}.

data.json
    Everything in one machine-readable JSON document: "subject" (who this export is about) and
    "sections", one list of records per kind of data. Dates and times are ISO 8601 (UTC), amounts are
    decimal strings, identifiers are strings.

{csv_lines}
The same records are in data.json and in the CSV files. In the CSV files, a value that begins with =, +,
-, @ or a tab is prefixed with an apostrophe so that spreadsheet programs show it as text; lists and
structured values are written as JSON.
"""


@dataclass(frozen=True)
class ExportResult:
    name: str  # the storage name of the ZIP
    counts: dict[str, int] = field(default_factory=dict)  # rows per section label
    size: int = 0  # bytes


class _Encoder(DjangoJSONEncoder):
    """ISO dates, decimals and UUIDs as strings (DjangoJSONEncoder), times to the microsecond (Django's
    encoder cuts them to milliseconds), bytes as hex and sets as lists."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        if isinstance(o, bytes | memoryview):
            return bytes(o).hex()
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        return super().default(o)


def _json_safe(value):
    """A value as it appears in data.json (round-tripped through the encoder: plain JSON types only)."""
    return json.loads(json.dumps(value, cls=_Encoder))


def _cell(value) -> str:
    """A value as a CSV cell: JSON-safe first, lists and objects as JSON text, None as empty."""
    value = _json_safe(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    return spreadsheet_safe(value)


def identity_of(customer: Customer) -> SubjectIdentity:
    return SubjectIdentity(
        customer_id=customer.pk,
        organization_id=customer.organization_id,
        email=customer.email or "",
        full_name=f"{customer.first_name} {customer.last_name}".strip(),
    )


def _columns(declaration: PersonalData) -> list[str]:
    return ["id", *(name for name in declaration.field_names() if name != "id")]


def section_rows(declaration: PersonalData, identity: SubjectIdentity):
    """The subject's rows of one declaration: one query, streamed in chunks, as tuples in `_columns` order."""
    model = declaration.model
    queryset = model._default_manager.filter(declaration.subject_filter(identity))
    if any(f.name == "organization" for f in model._meta.concrete_fields):
        queryset = queryset.filter(organization_id=identity.organization_id)
    names = _columns(declaration)
    return queryset.order_by("pk").values_list("pk", *names[1:]).iterator(chunk_size=CHUNK_SIZE)


def subject_summary(customer: Customer, *, request_label: str, generated_at) -> dict:
    return {
        "id": str(customer.pk),
        "customer_number": customer.customer_number,
        "name": customer.display_name,
        "email": customer.email or "",
        "request": request_label,
        "generated_at": generated_at.isoformat(),
    }


def export_customer(*, customer: Customer, request_label: str) -> ExportResult:
    """Build and store the subject's ZIP (in the caller's tenant context); return where it is and what it
    holds. Writes nothing to the database: the caller records the result on the request."""
    identity = identity_of(customer)
    generated_at = timezone.now()
    counts: dict[str, int] = {}
    declarations = personal_data()
    with (
        ExitStack() as temporaries,
        tempfile.TemporaryFile() as archive_file,
        zipfile.ZipFile(archive_file, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        # data.json is written last, from per-section fragments kept in temporary files while each
        # section's CSV streams into the ZIP (a ZIP takes one open entry at a time).
        fragments = []
        for declaration in declarations:
            columns = _columns(declaration)
            fragment = temporaries.enter_context(tempfile.TemporaryFile(mode="w+", encoding="utf-8"))
            fragments.append((declaration.label, fragment))
            count = 0
            with archive.open(f"{declaration.label}.csv", "w") as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(columns)
                for row in section_rows(declaration, identity):
                    writer.writerow([_cell(value) for value in row])
                    record = dict(zip(columns, row, strict=True))
                    fragment.write(
                        ("," if count else "") + json.dumps(record, cls=_Encoder, ensure_ascii=False)
                    )
                    count += 1
                text.flush()
                text.detach()
            counts[declaration.label] = count
        subject = subject_summary(customer, request_label=request_label, generated_at=generated_at)
        with archive.open("data.json", "w") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8")
            text.write('{"subject": ' + json.dumps(subject, ensure_ascii=False) + ', "sections": {')
            for position, (label, fragment) in enumerate(fragments):
                text.write(("," if position else "") + json.dumps(label) + ": [")
                fragment.seek(0)
                while chunk := fragment.read(64 * 1024):
                    text.write(chunk)
                text.write("]")
            text.write("}}")
            text.flush()
            text.detach()
        archive.writestr("README.txt", _readme(customer, request_label, generated_at, declarations, counts))
        archive.close()
        size = archive_file.tell()
        archive_file.seek(0)
        name = default_storage.save(
            f"{STORAGE_PREFIX}/{customer.organization_id}/{uuid.uuid4()}.zip", File(archive_file)
        )
    return ExportResult(name=name, counts=counts, size=size)


def _readme(customer, request_label, generated_at, declarations, counts) -> str:
    from crm.models import Organization

    organization = Organization.objects.filter(pk=customer.organization_id).values_list("name", flat=True)
    csv_lines = "".join(
        f"{d.label}.csv\n    {d.model._meta.verbose_name_plural}: {counts[d.label]} record(s); columns: "
        f"{', '.join(_columns(d))}.\n"
        for d in declarations
    )
    return README.format(
        organization=organization.first() or "",
        generated=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        request=request_label,
        csv_lines=csv_lines,
    )


def delete_export(name: str) -> None:
    """Remove a stored export (a request's link expired or was replaced)."""
    if name and default_storage.exists(name):
        default_storage.delete(name)


# --- The signed, expiring link ---------------------------------------------------------------------------


def link_max_age() -> datetime.timedelta:
    return datetime.timedelta(days=int(getattr(settings, "PRIVACY_EXPORT_LINK_DAYS", 7)))


def kind_of(request_obj) -> str:
    return "gdpr" if isinstance(request_obj, GdprRequest) else "ccpa"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def make_token(request_obj) -> str:
    payload = {"o": request_obj.organization_id.hex, "k": kind_of(request_obj), "r": request_obj.pk.hex}
    return _signer().sign_object(payload)


def export_download_url(request_obj) -> str:
    """The absolute public link to a request's export, valid for `PRIVACY_EXPORT_LINK_DAYS` days."""
    path = reverse("privacy_public:download", kwargs={"token": make_token(request_obj)})
    return f"{settings.CRM_BASE_URL}{path}"


class LinkRefused(Exception):
    """A download link that cannot be honoured: `reason` is "invalid" (404) or "expired" (410)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ExportLink:
    organization_id: uuid.UUID
    kind: str
    request_id: uuid.UUID


def read_token(token: str) -> ExportLink:
    """Verify a link's signature and age (no database access); raise LinkRefused."""
    try:
        payload = _signer().unsign_object(token, max_age=link_max_age())
    except signing.SignatureExpired:
        raise LinkRefused("expired") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkRefused("invalid") from None
    try:
        link = ExportLink(uuid.UUID(payload["o"]), payload["k"], uuid.UUID(payload["r"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LinkRefused("invalid") from None
    if link.kind not in REQUEST_MODELS:
        raise LinkRefused("invalid")
    return link


def export_request_get(*, organization_id, kind: str, pk):
    """A privacy request of the organization by kind and id, or 404."""
    model = REQUEST_MODELS.get(kind)
    if model is None:
        raise Http404
    return get_object_or_404(
        model.objects.filter(organization_id=organization_id).select_related("customer"), pk=pk
    )


def export_available(request_obj, *, for_public_link: bool) -> bool:
    """Whether the export can still be served: stored, not deleted, and (for the public link) not past the
    request's `export_expires_at`."""
    if not request_obj.export_file:
        return False
    if for_public_link and request_obj.export_expires_at and request_obj.export_expires_at <= timezone.now():
        return False
    return default_storage.exists(request_obj.export_file)
