"""Password rules beyond Django's own (OWASP ASVS 2.1: long passphrases allowed, no composition rules)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class MaximumLengthValidator:
    """Refuse absurdly long passwords (hashing cost), while allowing passphrases well beyond 64 characters."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is longer than %(max)d character.",
                    "This password is longer than %(max)d characters.",
                    self.max_length,
                )
                % {"max": self.max_length},
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return _("Up to %(max)d characters; passphrases welcome.") % {"max": self.max_length}
