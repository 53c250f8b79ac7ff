"""Read `.env` (if present) into the environment without overriding what is already set.

Called first thing by every settings module, before anything looks at DATABASE_URL and friends: the dev
stack decides whether to start by whether DATABASE_URL is set, and production fails fast on what is
missing; both must see what `.env` says.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def load() -> None:
    if (BASE_DIR / ".env").is_file():
        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
