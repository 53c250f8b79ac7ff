"""Settings of the Celery worker that tests/marketing/test_send_tasks.py starts: the test settings, with a
slow mail backend that writes each message to an outbox directory (so a test can kill the worker while a
chunk is being sent and count what really went out), and no throttling to speak of."""

import os
import time
import uuid
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

from crm.settings.test import *  # noqa: F403

EMAIL_BACKEND = "tests.marketing.send_worker_settings.SlowOutboxBackend"
MARKETING_SEND_RATE = 100_000
MARKETING_SEND_CHUNK = 10
OUTBOX = Path(os.environ.get("CRM_TEST_OUTBOX", "/tmp/crm-test-outbox"))  # noqa: S108
SECONDS_PER_MESSAGE = float(os.environ.get("CRM_TEST_MAIL_DELAY", "0.3"))


class SlowOutboxBackend(BaseEmailBackend):
    """Takes SECONDS_PER_MESSAGE per message (a slow SMTP server), then writes it as a file: the outbox."""

    def send_messages(self, email_messages):
        for message in email_messages:
            time.sleep(SECONDS_PER_MESSAGE)
            (OUTBOX / f"{uuid.uuid4()}.eml").write_bytes(message.message().as_bytes())
        return len(email_messages)
