"""Ticket attachments: what may be uploaded, and how it is served.

Uploads are checked by size and by type: the extension must be on an allow-list AND the file's first bytes
must agree with it (a renamed executable is refused). HTML, SVG and scripts are never accepted, and every
attachment is served as a download (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`)
to users who may see the ticket, so an attachment can never run in the CRM's origin.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

# extension -> (content type served, magic prefixes; empty = any content, for plain text formats)
ALLOWED: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": ("image/webp", (b"RIFF",)),
    "txt": ("text/plain", ()),
    "log": ("text/plain", ()),
    "csv": ("text/csv", ()),
    "json": ("application/json", ()),
    "eml": ("message/rfc822", ()),
    "zip": ("application/zip", (b"PK\x03\x04",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", (b"PK\x03\x04",)),
}


def max_bytes() -> int:
    return getattr(settings, "SUPPORT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)


def content_type_for(filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ALLOWED.get(extension, ("application/octet-stream", ()))[0]


def validate_upload(upload) -> None:
    """Raise ValidationError (field `attachments`) unless `upload` is an allowed type within the size cap."""
    name = upload.name or ""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED:
        raise ValidationError(
            {"attachments": _("%(name)s: files of this type are not accepted.") % {"name": name}}
        )
    if upload.size > max_bytes():
        raise ValidationError(
            {
                "attachments": _("%(name)s is %(size)s; attachments may be at most %(max)s.")
                % {"name": name, "size": filesizeformat(upload.size), "max": filesizeformat(max_bytes())}
            }
        )
    magic = ALLOWED[extension][1]
    if magic:
        upload.seek(0)
        head = upload.read(16)
        upload.seek(0)
        if not any(head.startswith(prefix) for prefix in magic):
            raise ValidationError(
                {
                    "attachments": _("%(name)s does not look like a .%(ext)s file.")
                    % {"name": name, "ext": extension}
                }
            )
