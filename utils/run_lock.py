"""One run per folder: an exclusive lock on a file inside it, held for the whole run.

    with RunLock(ckpt_dir):          # LockHeld (one line, naming the running process) if another run holds it
        train(...)

The lock is ``fcntl.flock`` on ``FOLDER/.dfpir.lock``. The kernel releases it when the holding
process ends in any way (exit, exception, SIGKILL), so a lock is never left held by a dead run: the
next run simply gets it. The file records the holder's pid, host, start time and command line, so a
refusal can name the running process; a clean release empties it, so a record found by the next
holder means the previous run died while holding the lock, and the takeover is announced on stderr.
The file itself stays in the folder (deleting it would let two runs lock two different files).

Child processes made with ``fork`` (e.g. data loader workers) share the lock: it is released when
the last of them ends, normally a few seconds after a killed parent.

File systems: on local file systems this is exact. On NFS, Linux emulates ``flock`` with NFS byte-
range locks: two machines exclude each other only if the server supports locking (NFSv4, or NFSv3
with lockd; a client mounted with ``nolock`` locks only among its own processes), and the lock of a
crashed client is freed when the server's lease runs out (about 90 s on NFSv4), not at once.

This module imports nothing of the project.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".dfpir.lock"
COMMAND_SHOWN = 200  # characters of the holder's command line named in a message


class LockError(Exception):
    """The folder cannot be locked; the message is one line naming it and what to do."""


class LockHeld(LockError):
    """The folder is in use by another running process; the message (one line) names it."""


def holder_record() -> dict:
    """This process as a lock holder: pid, host, start time (UTC, ISO 8601) and command line."""
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": shlex.join(getattr(sys, "orig_argv", sys.argv))}


def describe_holder(record: dict | None) -> str:
    """A holder record in words, on one line: 'pid 123 on host gpu1 since ... (python train.py ...)'."""
    if not record:
        return "another process (it has not recorded itself yet)"
    command = " ".join(str(record.get("command", "?")).split())
    if len(command) > COMMAND_SHOWN:
        command = command[: COMMAND_SHOWN - 3] + "..."
    return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')} since "
            f"{record.get('started', '?')} ({command})")


def _read_record(descriptor: int) -> dict | None:
    """The holder record in the lock file, None if it is empty or unreadable (a clean release empties it)."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 1 << 16).decode("utf-8", errors="replace").strip()
    try:
        record = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _write_record(descriptor: int, record: dict | None) -> None:
    """Replace the lock file's content by ``record`` (one JSON line), or empty it."""
    os.ftruncate(descriptor, 0)
    if record is not None:
        os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)


class RunLock:
    """An exclusive lock on ``folder`` for one run (module docstring); a context manager.

    folder:  the folder to lock (made if missing; the lock file is ``folder/.dfpir.lock``).
    purpose: what the folder is, for the refusal: e.g. "checkpoint folder --ckpt_dir".
    """

    def __init__(self, folder: str | os.PathLike[str], purpose: str = "folder") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.purpose = purpose
        self._descriptor: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise LockHeld naming its holder; announce a takeover from a dead run on stderr.

        LockError (one line) if the lock file cannot be made, e.g. in a read-only folder.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as error:
            raise LockError(f"cannot lock {self.purpose} {self.folder}: cannot open {self.path} "
                            f"({error.strerror or error}); choose a folder you can write to") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(_read_record(descriptor))
            os.close(descriptor)
            raise LockHeld(f"{self.purpose} {self.folder} is in use by {holder}; wait until it ends or stop it, "
                           f"or use another folder") from None
        previous = _read_record(descriptor)
        if previous is not None:
            print(f"note: taking over the lock of {self.folder} left by {describe_holder(previous)}, "
                  "which is no longer running", file=sys.stderr)
        _write_record(descriptor, holder_record())
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        """Empty the record and release the lock (the kernel also releases it when the process ends)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        try:
            _write_record(descriptor, None)
        finally:
            os.close(descriptor)  # closing the last descriptor of the lock releases it

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
