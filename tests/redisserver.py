"""A throwaway Redis server for tests: Debian's real ``redis-server``, a temporary
directory, a free loopback port, gone again when the session ends.

It listens on TCP 127.0.0.1 only (pytest-socket allows loopback) and keeps nothing on
disk (no RDB snapshots, no append-only file). A missing binary is an error, never a
skip: install it (Debian: ``apt-get install redis-server``; .ci/run does this).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pgserver import free_port  # one probe for every test server

__all__ = ["RedisServer", "RedisStartError", "RedisUnavailable", "free_port"]

_START_TIMEOUT = 20.0
_PORT_ATTEMPTS = 5


class RedisUnavailable(RuntimeError):
    """``redis-server`` cannot be found."""


class RedisStartError(RuntimeError):
    """The server did not come up; the message carries the end of its log."""


def find_binary() -> str:
    """The ``redis-server`` on PATH, or :class:`RedisUnavailable` saying how to get it."""
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(
            "redis-server not found on PATH. The shared rate limiter tests need a real "
            "Redis: install it (Debian/Ubuntu: `apt-get install -y redis-server`; "
            ".ci/run does this in CI)."
        )
    return found


class RedisServer:
    """One ``redis-server`` in a temporary directory on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        """Find the binary (nothing runs yet)."""
        self.binary = find_binary()
        self._process: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The TCP port the running server listens on."""
        if self._port is None:
            raise RuntimeError("RedisServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Forget every key (each test starts with empty windows)."""
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5) as connection:
            connection.flushall()

    def start(self) -> RedisServer:
        """Start the server; return self once it answers PING."""
        self._base = Path(tempfile.mkdtemp(prefix="cancelkit-redis-"))
        atexit.register(self.stop)
        try:
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                if self._launch(free_port(), last_attempt=attempt == _PORT_ATTEMPTS):
                    return self
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")  # _launch raises on the last attempt

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call more than once."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._port = None
        base, self._base = self._base, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    def _launch(self, port: int, *, last_attempt: bool) -> bool:
        """Start on ``port``; False if the port was taken meanwhile (try another)."""
        import redis

        assert self._base is not None
        log_path = self._base / f"redis-{port}.log"
        argv = [
            self.binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self._base),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(log_path),
        ]
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=self._base,
            start_new_session=True,  # a Ctrl-C reaches pytest, which stops us cleanly
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                if "Address already in use" in log and not last_attempt:
                    return False
                raise RedisStartError(f"redis-server exited while starting:\n{log}")
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as probe:
                    info = probe.info("server")
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
                continue
            if info.get("process_id") == self._process.pid:  # ours, not a squatter's
                self._port = port
                return True
            time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"redis-server did not answer within {_START_TIMEOUT:.0f}s")
