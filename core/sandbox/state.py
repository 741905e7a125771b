"""The sandbox state file: loaded and saved whole, atomically, under a file lock.

Several processes (``cancelkit send --sandbox`` run in parallel, a ``cancelkit
sandbox`` server) share one file. Each request runs as: take ``<state>.lock``,
bring the emulators up to date with the file, handle the request, save, release.
A save writes a temporary file in the same directory, fsyncs it and renames it
over the old one, so a reader (or a ``kill -9`` mid-save) sees either the old
state or the new one, never a mix. A file that cannot be read back is a
:class:`~cancelkit.errors.ConfigurationError` naming the file and the way out.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import filelock

from ...errors import ConfigurationError
from .emulator import Emulator

#: Seconds to wait for another process's lock: it is held for one request only.
LOCK_TIMEOUT = 60.0
#: filelock retries a held lock on a timer; its default (50 ms) would dominate a request.
_LOCK_POLL = 0.002


class StateFile:
    """One state file shared by every process that serves the sandbox.

    Call :meth:`load` and :meth:`save` inside :meth:`locked`; the emulators must
    not change between them except through the request being handled.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = filelock.FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT)
        # The bytes last read or written, so an unchanged file is not parsed again
        # and an unchanged state is not written again. Comparing the bytes (rather
        # than mtime and size) cannot be fooled by a coarse filesystem clock.
        self._seen: bytes | None = None
        self._in_sync = False  # False until the first load, and after a failed save
        # Platforms in the file that this process has no emulator for: kept on save.
        self._others: dict[str, Any] = {}

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``<state>.lock``: no other process loads or saves meanwhile."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A lock file that cannot be created is not worth waiting for: say so now.
            os.close(os.open(self._lock.lock_file, os.O_RDWR | os.O_CREAT, 0o600))
            self._lock.acquire(poll_interval=_LOCK_POLL)
        except filelock.Timeout:
            raise ConfigurationError(
                f"sandbox state file {self.path}: another process has held {self._lock.lock_file} "
                f"for over {LOCK_TIMEOUT:g} s; stop it, or delete the lock file"
            ) from None
        except OSError as error:
            raise ConfigurationError(
                f"sandbox state file {self.path}: cannot lock it: {error}"
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def load(self, emulators: Mapping[str, Emulator]) -> None:
        """Bring ``emulators`` up to date with the file; no file means the demo data.

        Raises ConfigurationError, naming the file and the way out, when the file
        is empty, not JSON, or not shaped as ``{platform: state}``.
        """
        raw = self._read()
        if self._in_sync and raw == self._seen:
            return
        if raw is None:
            for emulator in emulators.values():
                emulator.reset()
            self._others = {}
        else:
            saved = self._parse(raw)
            for platform, state in saved.items():
                if platform in emulators:
                    try:
                        emulators[platform].load_state(state)
                    except (KeyError, TypeError, ValueError) as error:
                        raise self._unreadable(
                            f"holds a {platform!r} state this version cannot load "
                            f"({type(error).__name__}: {error})"
                        ) from None
            self._others = {p: s for p, s in saved.items() if p not in emulators}
        self._seen, self._in_sync = raw, True

    def save(self, emulators: Mapping[str, Emulator]) -> None:
        """Write every emulator's state atomically (nothing is written if it did not change)."""
        state = {**self._others, **{p: e.dump_state() for p, e in emulators.items()}}
        data = json.dumps(state, indent=1).encode("utf-8")
        if self._in_sync and data == self._seen:
            return
        # Until the write succeeds the file and memory may differ: the next load rereads.
        self._in_sync = False
        try:
            write_atomic(self.path, data)
        except OSError as error:
            raise ConfigurationError(
                f"sandbox state file {self.path}: cannot write it: {error}"
            ) from None
        self._seen, self._in_sync = data, True

    def remove(self) -> None:
        """Delete the file (under the lock), so the next load starts from the demo data.

        Temporary files of saves killed mid-write go too: under the lock nobody is saving.
        """
        if self.path.exists() and not self.path.is_file():  # a device, a FIFO, a folder
            raise ConfigurationError(
                f"sandbox state {self.path} is not a regular file; not deleting it "
                "(point CANCELKIT_SANDBOX_STATE at a file)"
            )
        with self.locked():
            self.path.unlink(missing_ok=True)
            for leftover in self.path.parent.glob(f"{_temporary_prefix(self.path)}*.tmp"):
                leftover.unlink(missing_ok=True)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._unreadable(f"cannot be read ({error})") from None

    def _parse(self, raw: bytes) -> dict[str, dict[str, Any]]:
        if not raw.strip():
            raise self._unreadable("is empty")
        try:
            saved = json.loads(raw.decode("utf-8"))
        except ValueError as error:  # UnicodeDecodeError is a ValueError too
            raise self._unreadable(f"is not valid JSON ({error})") from None
        if not isinstance(saved, dict):
            raise self._unreadable(
                f"holds a JSON {type(saved).__name__}, not an object of platform -> state"
            )
        for platform, state in saved.items():
            if not isinstance(state, dict):
                raise self._unreadable(f"holds a {platform!r} state that is not an object")
        return saved

    def _unreadable(self, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"sandbox state file {self.path} {problem}; to start again from the demo data, "
            "run `cancelkit sandbox --reset` or delete the file"
        )


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix.

    The data reaches the disk (fsync) before the rename, and the rename before we
    return (fsync of the directory), so a crash or ``kill -9`` keeps one of the two.
    """
    fd, temporary = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Not possible on every OS (Windows cannot
    # open a directory): there the rename is still atomic, only less durable.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
