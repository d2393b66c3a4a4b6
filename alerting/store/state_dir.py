"""The state directory's files: owner-only (0700 directory, 0600 files, created so), one
alerting instance per directory (an exclusive `flock`), and a database that cannot be used
said in one line naming the file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_NAME = "alerting.sqlite3"
LOCK_NAME = "alerting.lock"
# The state holds patients' alerts and the outbox with PagerDuty routing keys: owner only.
DIR_MODE, FILE_MODE = 0o700, 0o600
PRIVATE_UMASK = 0o077


class StoreError(Exception):
    """The state cannot be used: one line naming the file and the problem."""


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created meanwhile are the owner's only (umask 077).

    SQLite creates the -wal and -shm files with the database file's mode; the umask covers
    them too should SQLite ever not."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def private_dir(path: Path) -> None:
    """The state directory, created 0700; an existing one is narrowed to 0700 (a state
    directory from a version before this one)."""
    with private_umask():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(DIR_MODE)


def private_file(path: Path) -> None:
    """`path` created 0600 if missing; an existing one narrowed to 0600."""
    with private_umask():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    if path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)


class StateLock:
    """One alerting instance per state directory: an exclusive `flock` on `alerting.lock`,
    held until `release` (or the process ends: the kernel drops it, even after SIGKILL)."""

    def __init__(self, state_dir: Path) -> None:
        private_dir(state_dir)
        self.path = state_dir / LOCK_NAME
        with private_umask():
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise StoreError(f"VITALS_STATE_DIR ({state_dir}): another vitals alerting is "
                             f"running on this state directory (it holds {self.path})"
                             ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        """Let another instance start."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def problem(path: Path, exc: BaseException) -> str:
    """One line naming the database file and what is wrong with it."""
    text = str(exc) or type(exc).__name__
    hint = {"file is not a database": "corrupt (not an SQLite database)",
            "database is locked": "locked by another process",
            "database or disk is full": "the disk (or the database) is full",
            "disk I/O error": "cannot write or read the file (disk full, file size limit, or a "
                              "failing disk)"}
    for known, said in hint.items():
        if known in text:
            text = f"{said}: {text}"
            break
    return f"alerting state ({path}): {text}"
