"""User-named outputs: the checks before any work, and atomic writes.

The rule for every file or folder a user names as a command's output:

* an output that exists is refused unless the command was given ``--overwrite``;
* an output that is, or resolves (through a symlink or a hard link) to, one of the command's
  inputs is refused, ``--overwrite`` or not;
* an output that cannot be written (a path component that is a file, a read-only folder, a missing
  parent that cannot be made) is found before the work, not after it.

:func:`check_output` and :func:`check_output_dir` apply the rule and create nothing; they raise
:class:`OutputError`, whose message is one line naming the path and what to do. Commands call them
before any training, conversion or scoring and turn the error into exit status 2.

:func:`atomic_write` then writes the output: to a temporary file in the same folder, synced, moved
onto the target with ``os.replace``. A reader sees the earlier file or the new one, never a part;
on any error (a full disk, an I/O error) the temporary file is removed, the earlier file is left
byte-identical and :class:`WriteError` says which path failed and why.

This module imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

PathLike = str | os.PathLike[str]
Content = str | bytes | Callable[[BinaryIO], object]
"""What :func:`atomic_write` writes: text (UTF-8), bytes, or a callback that writes to a binary file,
e.g. ``lambda f: torch.save(obj, f)`` or ``lambda f: image.save(f, format="PNG")``."""

TEMPORARY_SUFFIX = ".tmp"


class OutputError(Exception):
    """An output that must not or cannot be written; the message is one line naming the path and what to do."""


class WriteError(OutputError):
    """Writing an output failed (a full disk, an I/O error); the earlier file, if any, is unchanged."""


# --------------------------------------------------------------------------------------------------
# Checks (create nothing)


def _reason(error: OSError) -> str:
    """An OS error's reason in lower case, e.g. 'no space left on device'."""
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def _same_file(output: Path, source: Path) -> bool:
    """Whether ``output`` is ``source``: the same resolved path, or the same file (hard link, bind mount)."""
    if os.path.realpath(output) == os.path.realpath(source):
        return True
    try:
        return os.path.samefile(output, source)
    except OSError:  # one of them does not exist (yet)
        return False


def check_not_input(path: PathLike, inputs: Iterable[PathLike]) -> None:
    """Refuse an output that is, or resolves through a symlink or hard link to, one of ``inputs``."""
    path = Path(path)
    for source in map(Path, inputs):
        if _same_file(path, source):
            via = "" if os.path.abspath(path) == os.path.abspath(source) else f" (it resolves to {source})"
            raise OutputError(f"output {path} is one of the inputs{via}; choose an output that is not an input")


def check_separate_folders(*folders: tuple[str, PathLike | None]) -> None:
    """Refuse two output folders of one command (each ``(flag, path)``; None: not given) that are the same
    folder or one inside the other, once symlinks are resolved: writing one would write into the other
    (``net.hub --out X --space X/space`` copied the Hub folder into itself). Creates nothing."""
    given = [(f"{flag} {path}", Path(os.path.realpath(path))) for flag, path in folders if path is not None]
    for i, (one, one_real) in enumerate(given):
        for other, other_real in given[i + 1:]:
            if one_real == other_real:
                raise OutputError(f"{one} is the same folder as {other}: choose two separate folders")
            if one_real.is_relative_to(other_real) or other_real.is_relative_to(one_real):
                inner, outer = (one, other) if one_real.is_relative_to(other_real) else (other, one)
                raise OutputError(f"{inner} is inside {outer}: writing one would write into the other; "
                                  "choose two separate folders")


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (as anything, a broken symlink too)."""
    return next((candidate for candidate in [path, *path.parents] if os.path.lexists(candidate)), Path("."))


def _write_problem(folder: Path) -> str | None:
    """Why files cannot be made in the existing ``folder`` (e.g. 'read-only file system'); None if they can."""
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS).lower()
    if not os.access(folder, os.W_OK | os.X_OK):
        return os.strerror(errno.EACCES).lower()
    return None


def check_writable(path: PathLike) -> None:
    """Refuse ``path`` (file or folder) if it could not be made: a path component that is not a folder,
    or a read-only nearest existing folder (read-only mount or no write permission). Creates nothing."""
    path = Path(path)
    folder = path if path.is_dir() else _nearest_existing(path.parent)
    if not folder.is_dir():
        what = "a file" if folder.is_file() else "not a folder"
        raise OutputError(f"cannot write {path}: {folder} is {what}; choose another path")
    problem = _write_problem(folder)
    if problem is not None:
        raise OutputError(f"cannot write {path}: {folder} is not writable ({problem}); "
                          "choose a folder you can write to")


def check_output(path: PathLike, *, overwrite: bool = False, inputs: Iterable[PathLike] = (),
                 flag: str = "--overwrite") -> Path:
    """Apply the output rule (module docstring) to the output file ``path``; return it as a Path.

    overwrite: the command's ``--overwrite`` was given: an existing file may be replaced.
    inputs:    the command's input files; an output that is one of them is refused even with ``overwrite``.
    flag:      the command's flag that allows replacing, named in the refusal.

    Raises OutputError (one line) and creates nothing.
    """
    path = Path(path)
    check_not_input(path, inputs)
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(f"output {path} already exists; pass {flag} to replace it, or choose another path")
    check_writable(path)
    return path


def check_output_dir(path: PathLike) -> Path:
    """Refuse ``path`` as an output folder if it is a file or cannot be made or written; return it as a Path.

    What may be replaced inside the folder is the caller's rule (``check_output`` on each file).
    Raises OutputError (one line) and creates nothing.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is not a folder; choose a folder")
    check_writable(path)
    return path


# --------------------------------------------------------------------------------------------------
# Atomic writes


def _open_temporary(path: Path) -> tuple[Path, int]:
    """A new, empty temporary file beside ``path`` (hidden, ``.tmp``) and its descriptor.

    Made with the permissions a plain ``open(path, "w")`` would give (0o666 less the umask).
    """
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMPORARY_SUFFIX}")
        try:
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name beside {path}")


def _write_content(file: BinaryIO, content: Content, encoding: str) -> None:
    if callable(content):
        content(file)
    else:
        file.write(content.encode(encoding) if isinstance(content, str) else content)


def _sync_folder(folder: Path) -> None:
    """Make the rename in ``folder`` durable; best effort (some file systems cannot sync a folder)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write(path: PathLike, content: Content, *, encoding: str = "utf-8") -> Path:
    """Write ``content`` to ``path`` atomically; return ``path`` as a Path.

    content: text (encoded with ``encoding``), bytes, or a callback given the open binary file.

    Makes the missing parent folders, writes a temporary file in the target's folder, syncs it and
    moves it onto ``path`` (``os.replace``; a replaced file's permission bits are kept; a symlink at
    ``path`` is replaced by the file, its target is not written). On any error the temporary file is
    removed and the earlier file is unchanged; an OS error (e.g. ENOSPC) becomes a one-line
    WriteError naming the path, any other exception (e.g. from the callback) is raised as it is.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary, descriptor = _open_temporary(path)
        with os.fdopen(descriptor, "wb") as file:
            _write_content(file, content, encoding)
            file.flush()
            os.fsync(file.fileno())
        if path.is_file() and not path.is_symlink():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        advice = ("free some space there or choose another path" if error.errno in (errno.ENOSPC, errno.EDQUOT)
                  else "choose another path or fix the folder")
        raise WriteError(f"cannot write {path}: {_reason(error)} (the earlier file, if any, is unchanged); "
                         f"{advice}") from error
    finally:
        if temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    _sync_folder(path.parent)
    return path


def _destination_problem(destination: Path) -> str | None:
    """Why a staged file cannot be moved onto ``destination`` (a folder there, or a file in its path)."""
    if destination.is_dir() and not destination.is_symlink():
        return f"{destination} is a folder"
    blocking = next((p for p in destination.parents if os.path.lexists(p) and not p.is_dir()), None)
    return f"{blocking} is a file" if blocking is not None else None


@contextlib.contextmanager
def staged_folder(target: PathLike) -> Iterator[Path]:
    """A new hidden folder inside ``target`` in which a command writes a set of outputs; yielded.

    When the block ends without an error, each staged file is moved onto the same relative path in
    ``target`` (``os.replace``: atomic per file; a file of that name is replaced, a symlink there is
    replaced and never followed; no other file of ``target`` is touched). On any error, and after the
    move, the staging folder is removed. A destination that is a folder, or lies below a file, is
    found before any file is moved (WriteError, ``target`` unchanged).
    """
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staged.", suffix=TEMPORARY_SUFFIX, dir=target))
    except OSError as error:
        raise WriteError(f"cannot write {target}: {_reason(error)}; choose another folder") from error
    try:
        yield staging
        files = sorted(p.relative_to(staging) for p in staging.rglob("*") if not p.is_dir() or p.is_symlink())
        problems = [problem for name in files if (problem := _destination_problem(target / name))]
        if problems:
            raise WriteError(f"cannot write into {target}: {problems[0]}; remove it or choose another folder")
        for name in files:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, target / name)
    except OSError as error:
        raise WriteError(f"cannot write into {target}: {_reason(error)}; free some space there or choose "
                         "another folder") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _sync_folder(target)
