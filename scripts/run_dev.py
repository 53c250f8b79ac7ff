#!/usr/bin/env python
"""`make run`: the whole application on one terminal, stopped by one Ctrl-C.

Starts (or finds) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, migrates, loads
the demo data, then runs three children: `manage.py runserver`, a Celery worker and Celery beat. It prints
the URL and the demo logins once the server answers.

Each child runs in a process group of its own, so a Ctrl-C in the terminal (or a SIGINT sent to the whole
`make run` group) reaches only this script, which then stops the children and waits for them:
SIGTERM to each child's group (runserver's autoreloader has a child of its own; Celery's worker shuts down
warm), SIGKILL after a grace period. A second Ctrl-C skips the grace period. If a child dies on its own,
the others are stopped and the exit code is 1. The embedded servers are stopped at the end only if this
script started them; servers that were already running (or real ones from DATABASE_URL) are left alone.

No third-party process manager: the standard library is enough for three children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")
os.environ.setdefault("PYTHONUNBUFFERED", "1")  # children's logs appear as they happen, interleaved

from crm import devstack  # noqa: E402  (needs ROOT on sys.path)

HOST = "127.0.0.1"
GRACE_SECONDS = 20  # Celery's warm shutdown finishes the task in hand; past this, SIGKILL
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105  (the documented demo credential; seed_demo refuses production)
DEMO_ORGANIZATIONS = [("acme", "Acme Corp"), ("globex", "Globex Inc")]
BEAT_SCHEDULE = devstack.DEVDATA / "celerybeat-schedule"


class Stop(Exception):
    """A stop was requested by a signal."""


class StepFailed(Exception):
    """A set-up command (migrate, seed_demo) exited non-zero."""


class Supervisor:
    """Three children in process groups of their own, and the signals that stop them.

    The signal handler only records the signal; the loops below poll for it, so no exception ever
    arrives in the middle of starting or stopping a child.
    """

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}
        self.received: list[int] = []

    @property
    def stop_requested(self) -> bool:
        return bool(self.received)

    def install_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        self.received.append(signum)
        if signum == signal.SIGINT and self.received.count(signal.SIGINT) > 1:
            self._kill_all(signal.SIGKILL)  # a second Ctrl-C: no more waiting

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        # process_group=0: a group of its own, so the terminal's Ctrl-C reaches only us and one killpg()
        # reaches the child's own children too (runserver's autoreloader runs the server in a child); the
        # same session, so the output still goes to the terminal.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, process_group=0)  # noqa: S603
        self.children[name] = proc
        return proc

    def run_step(self, name: str, args: list[str]) -> None:
        """Run a set-up command to completion; a stop request stops it (in stop_all)."""
        print(f"==> {name}", flush=True)
        proc = self.spawn(name, args)
        while proc.poll() is None:
            if self.stop_requested:
                raise Stop
            time.sleep(0.1)
        del self.children[name]
        if proc.returncode:
            raise StepFailed(f"run_dev: `{' '.join(args[1:])}` failed with exit code {proc.returncode}")

    def watch(self) -> str | None:
        """Wait until a child exits on its own (return its name) or a stop is requested (return None)."""
        while not self.stop_requested:
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    return name
            time.sleep(0.2)
        return None

    def _kill_all(self, sig: int) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)

    def stop_all(self) -> None:
        """SIGTERM every running child's group, wait for them, SIGKILL whatever outlives the grace period."""
        self._kill_all(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, proc in self.children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"run_dev: {name} did not stop within {GRACE_SECONDS}s; killing it", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A child's own children (runserver's reloaded server) may outlive it by a moment: end them too.
        for proc in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def wait_for_port(port: int, proc: subprocess.Popen, sup: Supervisor, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not sup.stop_requested:
        if port_open(port):
            return True
        time.sleep(0.25)
    return False


def banner(url: str) -> str:
    """The URL and a table of the demo logins: one user per role in each demo organization."""
    from crm.permissions import Role  # plain TextChoices: importable without Django being set up

    rows = [("role", *(f"{name} ({slug})" for slug, name in DEMO_ORGANIZATIONS))]
    for role in Role:
        rows.append((role.value, *(f"{role.value}@{slug}.example" for slug, _ in DEMO_ORGANIZATIONS)))
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(len(rows[0]))]
    table = ["".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    operator = "root@crm.example (superuser: all organizations, /admin/)"
    table.append("platform operator".ljust(widths[0]) + operator)
    rule = "=" * 78
    return "\n".join(
        [
            "",
            rule,
            f"  CRM is running at {url}   (Ctrl-C stops everything)",
            "",
            f"  Demo logins, all with the password {DEMO_PASSWORD}",
            "",
            *(f"  {line}" for line in table),
            rule,
            "",
        ]
    )


def main() -> int:
    port = int(os.environ.get("PORT") or 8000)
    url = f"http://{HOST}:{port}/"
    python = sys.executable

    # A .env file counts as the user's configuration (as the settings read it): load it first, so a
    # DATABASE_URL / REDIS_URL there is used rather than the embedded services.
    env_file = ROOT / ".env"
    if env_file.is_file():
        import environ

        environ.Env.read_env(env_file, overwrite=False)
    # Then, before anything else: find or start the embedded services and put their URLs into our
    # environment, which every child inherits (so none of them starts or looks for anything itself).
    uses_embedded = not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL")
    before = devstack.status()
    already_running = before["postgres"]["running"] or before["redis"]["running"]
    if uses_embedded:
        print(f"==> embedded PostgreSQL and Redis (data in {devstack.DEVDATA.name}/)", flush=True)
    try:
        devstack.apply_to_environ()
    except devstack.DevStackError as exc:
        print(f"run_dev: the dev stack did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if uses_embedded and not already_running:
            devstack.stop()
        return 130
    started_stack = uses_embedded and not already_running

    if port_open(port):
        print(f"run_dev: {HOST}:{port} is already in use; try: make run PORT={port + 1}", file=sys.stderr)
        return 1
    BEAT_SCHEDULE.parent.mkdir(mode=0o700, exist_ok=True)

    sup = Supervisor()
    sup.install_handlers()
    exit_code = 0
    try:
        sup.run_step("migrate", [python, "manage.py", "migrate", "--noinput"])
        sup.run_step("demo data", [python, "manage.py", "seed_demo"])
        if sup.stop_requested:
            raise Stop
        print("==> runserver, Celery worker and Celery beat", flush=True)
        web = sup.spawn("runserver", [python, "manage.py", "runserver", f"{HOST}:{port}"])
        worker = [python, "-m", "celery", "-A", "crm", "worker", "-l", "info", "-P", "solo", "-n", "dev@%h"]
        sup.spawn("celery worker", worker)
        beat = [python, "-m", "celery", "-A", "crm", "beat", "-l", "info", "-s", str(BEAT_SCHEDULE)]
        sup.spawn("celery beat", beat)
        if wait_for_port(port, web, sup):
            print(banner(url), flush=True)
        died = sup.watch()
        if died:
            rc = sup.children[died].returncode
            print(f"run_dev: {died} exited unexpectedly (exit code {rc}); stopping the rest", file=sys.stderr)
            exit_code = 1
    except Stop:
        pass
    except StepFailed as exc:
        print(exc, file=sys.stderr)
        exit_code = 1
    finally:
        if sup.stop_requested:
            print("\nrun_dev: stopping...", flush=True)
        sup.stop_all()
        if started_stack:
            devstack.stop()
            print("run_dev: stopped the app, Celery, and the embedded PostgreSQL and Redis", flush=True)
        elif uses_embedded:
            print(
                "run_dev: stopped the app and Celery; the embedded PostgreSQL and Redis were running before "
                "`make run` and are left running (make devstack-stop stops them)",
                flush=True,
            )
        else:
            print("run_dev: stopped the app and Celery", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
