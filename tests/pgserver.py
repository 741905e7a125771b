"""A throwaway PostgreSQL server for tests: real binaries, a temporary data directory,
a free loopback port, gone again when the session ends.

PostgreSQL refuses to run as root, and tests (and CI) here run as root: then every
PostgreSQL binary is run as an unprivileged user (``nobody``) through ``setpriv`` (or
``runuser`` where ``setpriv`` is missing). As any other user the binaries run directly.

The server listens on TCP 127.0.0.1 only (pytest-socket allows loopback) with Unix
sockets switched off, trusts every local connection, and runs with ``fsync`` off: it is
fast and holds nothing worth keeping. Missing binaries are an error, never a skip:
install PostgreSQL (Debian: ``apt-get install postgresql``).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

#: The superuser ``initdb`` creates; every connection logs in as it (trust auth).
SUPERUSER = "cancelkit"
#: The database that always exists, used to create and drop the per-test ones.
MAINTENANCE_DB = "postgres"
#: Who runs the binaries when the tests run as root.
DEFAULT_RUN_AS = "nobody"

_BINARIES = ("initdb", "postgres")
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_PORT_ATTEMPTS = 5


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's binaries (or a user to run them as) cannot be found."""


class PostgresStartError(RuntimeError):
    """The server did not come up; the message carries the end of its log."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    ``PATH`` first (``shutil.which``), then Debian's ``/usr/lib/postgresql/*/bin``
    (newest version first). Raises :class:`PostgresUnavailable` with how to fix it.
    """
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        # Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
        # so that ``postgres`` is taken from the same installation.
        candidates += [Path(found).resolve().parent, Path(found).parent]
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in _BINARIES):
            return directory
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH nor in "
        "/usr/lib/postgresql/*/bin. The PostgreSQL tests need a real server: install it "
        "(Debian/Ubuntu: `apt-get install -y postgresql`; .ci/run does this in CI)."
    )


def _version_key(name: str) -> tuple[int, ...]:
    """Sort key for a version directory name such as ``15`` or ``9.6``."""
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (it may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether user ``uid`` can walk down to ``path`` (search permission on each ancestor)."""
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_uid == uid:
            bit = stat.S_IXUSR
        elif mode.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            return False
    return True


def _postmaster_ready(data: Path, port: int) -> bool:
    """Whether ``data/postmaster.pid`` says the server is up on ``port`` and ready.

    Its fourth line is the port and its eighth the status, ``ready`` once connections
    are accepted (PostgreSQL 10+). Reading it first, rather than trying to connect
    right away, avoids hanging on a port someone else took meanwhile.
    """
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[3].strip() == str(port) and lines[7].strip() == "ready"


class PostgresServer:
    """One PostgreSQL server in a temporary directory on a free 127.0.0.1 port.

    ``start()`` runs ``initdb`` then ``postgres`` and waits until it accepts
    connections; ``stop()`` shuts it down (fast mode) and deletes the directory. Usable
    as a context manager. :attr:`url` and :meth:`create_database` give SQLAlchemy URLs
    (driver ``postgresql+psycopg``).
    """

    def __init__(self, *, run_as: str = DEFAULT_RUN_AS) -> None:
        """Prepare (nothing runs yet). ``run_as`` is the user the binaries run as when
        this process is root; ignored otherwise."""
        self.bindir = find_bindir()
        self._run_as = run_as
        self._base: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        #: Seconds the last :meth:`start` took (initdb + server up).
        self.startup_seconds: float | None = None

    # -- what tests use -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the running server listens on."""
        if self._port is None:
            raise RuntimeError("PostgresServer is not started")
        return self._port

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return "127.0.0.1"

    @property
    def user(self) -> str:
        """The superuser to connect as (no password: trust authentication)."""
        return SUPERUSER

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the always-present ``postgres`` database."""
        return self.url_for(MAINTENANCE_DB)

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (``postgresql+psycopg``) of database ``dbname`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = MAINTENANCE_DB) -> str:
        """libpq connection string (for psycopg directly) of database ``dbname``."""
        return (
            f"host={self.host} port={self.port} user={self.user} dbname={dbname} connect_timeout=5"
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (``test_<random hex>`` by default); return its URL.

        Cheap (a copy of ``template1``, a few milliseconds with fsync off), so one per
        test is fine.
        """
        import psycopg
        from psycopg import sql

        name = name or f"test_{uuid.uuid4().hex}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, ending any sessions still connected."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb a fresh cluster and start the server; return self once it accepts
        connections. Raises :class:`PostgresStartError` with the server's log if not."""
        if self._process is not None:
            raise RuntimeError("PostgresServer is already started")
        began = time.monotonic()
        self._base = self._make_base_dir()
        atexit.register(self.stop)
        try:
            data = self._base / "data"
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                what="initdb",
            )
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                port = free_port()
                if self._launch(data, port, last_attempt=attempt == _PORT_ATTEMPTS):
                    self._port = port
                    break
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Shut the server down (fast: running queries are cancelled) and delete its
        directory. Safe to call more than once, or after a failed start."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None:
            self._shut_down(process)
        self._port = None
        base, self._base = self._base, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # -- internals ----------------------------------------------------------------------

    def _account(self) -> pwd.struct_passwd | None:
        """The account to drop to when root; None when no drop is needed."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self._run_as)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, and PostgreSQL refuses root: the tests run it as user "
                f"{self._run_as!r}, which does not exist on this machine"
            ) from None

    def _make_base_dir(self) -> Path:
        """A fresh directory for the cluster, its ``data`` subdirectory owned by whoever
        runs the server (and reachable by them)."""
        account = self._account()
        base = Path(tempfile.mkdtemp(prefix="cancelkit-pg-"))
        if account is not None:
            base.chmod(0o755)
            if not _traversable_by(base, account.pw_uid, account.pw_gid):
                # $TMPDIR is somewhere the unprivileged user cannot reach (under /root...).
                shutil.rmtree(base)
                base = Path(tempfile.mkdtemp(prefix="cancelkit-pg-", dir="/tmp"))
                base.chmod(0o755)
        data = base / "data"
        data.mkdir(mode=0o700)
        if account is not None:
            os.chown(data, account.pw_uid, account.pw_gid)
        return base

    def _command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run as the unprivileged user when root.

        ``setpriv`` execs in place (so the child *is* the server) and arranges for the
        server to get SIGINT (fast shutdown) if this process dies without stopping it.
        """
        account = self._account()
        setpriv = shutil.which("setpriv")
        if account is None:
            return [setpriv, "--pdeathsig", "INT", "--", *argv] if setpriv else argv
        if setpriv:
            return [
                setpriv,
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
                "--pdeathsig",
                "INT",
                "--",
                *argv,
            ]
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", account.pw_name, "--", *argv]
        raise PostgresUnavailable(
            "running as root, and PostgreSQL refuses root: neither setpriv nor runuser "
            "is available to run it as an unprivileged user"
        )

    @staticmethod
    def _environment() -> dict[str, str]:
        """The binaries' environment: ours without PG* variables (PGDATA, PGPORT...
        would override the arguments) and in the C locale (always installed)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run(self, argv: list[str], *, what: str) -> None:
        """Run a binary to completion; raise with its output if it fails."""
        result = subprocess.run(
            self._command(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._environment(),
            cwd=self._base,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresStartError(
                f"{what} failed (exit {result.returncode}):\n"
                + result.stdout.decode(errors="replace")
            )

    def _launch(self, data: Path, port: int, *, last_attempt: bool) -> bool:
        """Start ``postgres`` on ``port`` and wait until it is ours and ready.

        Returns False if the port was taken meanwhile (try another); raises if the
        server failed for any other reason, or on the last attempt.
        """
        assert self._base is not None
        log_path = self._base / f"postgres-{port}.log"
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",  # TCP only: no socket path to own or to fit
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self._base,
                start_new_session=True,  # a Ctrl-C reaches pytest, which stops us cleanly
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                log_text = log_path.read_text(errors="replace")
                if "could not bind" in log_text and not last_attempt:
                    return False
                raise PostgresStartError(f"postgres exited while starting:\n{log_text}")
            if _postmaster_ready(data, port) and self._accepts_connections(port, data):
                return True
            time.sleep(0.02)
        process, self._process = self._process, None
        self._shut_down(process)
        raise PostgresStartError(
            f"postgres did not accept connections within {_START_TIMEOUT:.0f}s:\n"
            + log_path.read_text(errors="replace")
        )

    def _accepts_connections(self, port: int, data: Path) -> bool:
        """Whether our server (not another on the same port) answers on ``port``."""
        import psycopg

        conninfo = (
            f"host={self.host} port={port} user={SUPERUSER} dbname={MAINTENANCE_DB} "
            "connect_timeout=2"
        )
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and Path(row[0]).resolve() == data.resolve()

    def _shut_down(self, process: subprocess.Popen[bytes]) -> None:
        """Fast shutdown (SIGINT to the postmaster, as ``pg_ctl stop -m fast``), then
        immediate (SIGQUIT), then SIGKILL, waiting for the process to exit."""
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if process.poll() is not None:
                return
            self._signal_postmaster(process, sig)
            try:
                process.wait(timeout=_STOP_TIMEOUT if sig == signal.SIGINT else 5)
            except subprocess.TimeoutExpired:
                continue
            return

    def _signal_postmaster(self, process: subprocess.Popen[bytes], sig: int) -> None:
        """Send ``sig`` to the postmaster: the child itself, unless a wrapper (runuser)
        sits between, in which case its PID comes from ``postmaster.pid``."""
        pid = process.pid
        if self._base is not None:
            pidfile = self._base / "data" / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().split("\n", 1)[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if sig == signal.SIGKILL and pid != process.pid:
            process.kill()
