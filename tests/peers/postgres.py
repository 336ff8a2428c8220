"""A real, throw-away PostgreSQL as a test peer: found or installed, started on loopback.

**Install.** ``python -m tests.peers install`` (tox's ``tests`` env runs it first) makes sure
PostgreSQL's server binaries (``initdb``, ``postgres``) are at hand, and does nothing when they
are: ``$NOTIFY_DEVINO_PG_BIN`` (a folder; when set, only it), ``pg_config --bindir``, or the newest
``/usr/lib/postgresql/*/bin``. Otherwise, as root on a Debian machine, it installs Debian's
``postgresql`` (with every service start denied, as for Alertmanager: the tests start their own
server, not the system's).

**Run.** :class:`PostgresPeer` runs ``initdb`` into a fresh folder, starts ``postgres`` on a
free port of 127.0.0.1 with its unix socket in that folder, ``fsync`` and synchronous commits
on (durability is what the store is tested for), password authentication, and stops it on
exit. PostgreSQL refuses to run as root: as root, the folder is given to an unprivileged user
(``postgres`` when the machine has it, else ``nobody``) and the server runs as that user.

**pytest.** The session fixture :func:`postgres` yields the running peer; :func:`new_database`
creates an empty database on it and gives its DSN. Without the binaries the PostgreSQL tests
skip and say why, except under CI (``CI=true``), where a missing PostgreSQL fails them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import apt_install, free_port

PACKAGE = "postgresql"
ENV_BIN = "NOTIFY_DEVINO_PG_BIN"
SUPERUSER = "notify"


def find_bindir() -> Path | None:
    """The folder with ``initdb`` and ``postgres``, or None when there is none."""
    named = os.environ.get(ENV_BIN)
    if named:  # named explicitly: that folder or none (NOTIFY_DEVINO_PG_BIN=/none: a laptop)
        folder = Path(named)
        found = (folder / "initdb").is_file() and (folder / "postgres").is_file()
        return folder if found else None
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def major(path: Path) -> int:
        found = re.search(r"/(\d+)/bin$", str(path))
        return int(found.group(1)) if found else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def install(*, quiet: bool = False) -> Path | None:
    """Make sure the binaries are at hand (see the module docstring). :return: their folder, or
    None when there are none and this process may not install them (not root, no apt)."""
    return apt_install(
        "postgresql",
        PACKAGE,
        find_bindir,
        f"install Debian's {PACKAGE}, or set {ENV_BIN} to the folder of initdb and postgres",
        quiet=quiet,
    )


def version(bindir: Path) -> str:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or out.stderr.strip() or "?"


def _server_user() -> pwd.struct_passwd | None:
    """Who the server runs as: None (this process) unless it is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' user to run as")


class PostgresPeer:
    """One throw-away PostgreSQL server on 127.0.0.1 (``with PostgresPeer(bindir) as pg:``).

    :ivar dsn: the DSN of its ``postgres`` database, as the superuser (with the password).
    :ivar log_file: what the server logged (read it when a test fails).
    """

    def __init__(self, bindir: Path, *, max_connections: int = 200) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.user = _server_user()
        self.password = secrets.token_urlsafe(16)
        self.folder = Path(tempfile.mkdtemp(prefix="notify-devino-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "run"
        self.log_file = self.folder / "postgres.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    def __enter__(self) -> PostgresPeer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _as_server(self) -> dict[str, object]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self, ready_within: float = 60) -> None:
        self.socket_dir.mkdir()
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user is not None:
            for path in (self.folder, self.socket_dir, pwfile):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **self._as_server(),  # type: ignore[arg-type]
        )
        pwfile.unlink()
        for attempt in range(5):
            self.port = free_port()
            if self._launch(ready_within):
                return
            if "could not bind" not in self.log() or attempt == 4:
                raise RuntimeError(f"postgres did not start:\n{self.log()}")

    def _launch(self, ready_within: float) -> bool:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": str(self.max_connections),
            "shared_buffers": "32MB",
            "log_min_messages": "warning",
        }
        args = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        log = self.log_file.open("ab")
        if self.user is not None:
            os.chown(self.log_file, self.user.pw_uid, self.user.pw_gid)
        self._process = subprocess.Popen(
            args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, **self._as_server()
        )  # type: ignore[call-overload]
        log.close()
        deadline = time.monotonic() + ready_within
        socket_file = self.socket_dir / f".s.PGSQL.{self.port}"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if socket_file.exists() and self._accepts():
                return True
            time.sleep(0.05)
        raise RuntimeError(f"postgres not ready in {ready_within} s:\n{self.log()}")

    def _accepts(self) -> bool:
        ready = self.bindir / "pg_isready"
        if ready.is_file():
            out = subprocess.run(
                [str(ready), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            return out.returncode == 0
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # a "fast" shutdown: SIGTERM waits for clients
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with ``psql`` (no Python driver needed). :return: its output."""
        command = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        target = ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        out = subprocess.run(
            [*command, *target, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database. :return: its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI (where PostgreSQL must be there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}: run 'python -m tests.peers install' first")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresPeer]:
    """One PostgreSQL server for the whole session (skips when there is none; fails in CI)."""
    bindir = find_bindir()
    if bindir is None:
        unavailable(
            f"no PostgreSQL server binaries (initdb, postgres): install Debian's {PACKAGE} "
            f"('python -m tests.peers install' as root) or set {ENV_BIN}"
        )
        raise AssertionError("unreachable")
    with PostgresPeer(bindir) as peer:
        yield peer


@pytest.fixture
def new_database(postgres: PostgresPeer) -> str:
    """The DSN of a new, empty database on the session's server (for the PostgreSQL store,
    which needs asyncpg: skipped, or failed under CI, without it)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        unavailable("asyncpg is not installed: pip install 'notify-devino[postgresql]'")
    return postgres.create_database()


__all__ = [
    "PostgresPeer",
    "find_bindir",
    "install",
    "new_database",
    "postgres",
    "unavailable",
    "version",
]
