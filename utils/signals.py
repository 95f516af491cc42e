"""One policy for stopping a long-running command by a signal (issue 30, cases 8 and 15).

Ctrl-C (SIGINT), SIGTERM (a scheduler, ``kill``) and SIGHUP (the terminal closed) each end a command the
same way: the running work is interrupted as Ctrl-C interrupts it (``Stopped``, a ``KeyboardInterrupt``,
so every ``finally`` runs: temporary files are removed, a training saves ``last.ckpt``), then one line
on stderr names the signal and the exit status is 128 + the signal's number: 130, 143, 129. Never a
traceback, also while the command's imports load (:func:`exit_on_signals` around them).

Used by every long-running command: the training and test scripts, ``demo.py`` and
``train_recognizer.py`` through ``engine.cli.run_cli``; ``app.py``, ``quickstart.py`` and
``python -m data.prepare`` through :func:`run_stoppable`. During ``trainer.fit`` Lightning handles
SIGTERM itself (:func:`lightning_owns_sigterm`: it stops after the current step and saves).

This module imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP (the terminal closed)"}
"""The signals of the policy, and how the line names each."""


class Stopped(KeyboardInterrupt):
    """A command stopped by one of :data:`NAMES` (a KeyboardInterrupt, so code that handles Ctrl-C handles it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signum, f"signal {signum}"))
        self.signum = signum


_received: list[int] = []
"""The signals received during the current command, for code whose callee swallows the KeyboardInterrupt (a server,
a library's bare ``except:`` while it loads): the command still stops, at its next check."""


def _raise_stopped(signum: int, frame) -> None:
    _received.append(signum)
    raise Stopped(signum)


def received() -> Stopped | None:
    """The first signal of the policy received during the current command (as a :class:`Stopped`), None if none
    was."""
    return Stopped(_received[0]) if _received else None


def install() -> None:
    """From now on each signal of :data:`NAMES` raises :class:`Stopped` in the main thread (no-op elsewhere)."""
    with contextlib.suppress(ValueError):  # signal.signal works in the main thread only
        for signum in NAMES:
            signal.signal(signum, _raise_stopped)


def signal_of(stop: KeyboardInterrupt) -> int:
    """The signal behind ``stop``: its own for :class:`Stopped`, SIGINT for a plain KeyboardInterrupt."""
    return getattr(stop, "signum", signal.SIGINT)


def exit_status(stop: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + signal_of(stop)


def report(stop: KeyboardInterrupt, what: str = "") -> int:
    """Print the one line of a command stopped by ``stop`` (``what``: what was kept or left, e.g. where to
    resume) and return its exit status."""
    print(f"\nstopped by {NAMES.get(signal_of(stop), 'a signal')}{f'; {what}' if what else ''}", file=sys.stderr)
    return exit_status(stop)


def stop_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The stop that ``error`` is, or follows: ``error`` itself for a KeyboardInterrupt; for any other exception
    the signal received before it, if one was (a signal that lands inside an import can leave the module half
    loaded, and the next use of it fails otherwise: e.g. numpy's lazy submodules recursing until RecursionError);
    None for an exception of its own."""
    return error if isinstance(error, KeyboardInterrupt) else received()


def run_stoppable(run: Callable[[], int]) -> int:
    """run() under the policy: its exit status, or the stopping signal's (with its one line); a signal received
    before (while the command's imports loaded, and swallowed there) stops it before it starts."""
    install()
    try:
        pending = received()
        if pending is not None:
            return report(pending)
        return run()
    except BaseException as error:
        stop = stop_behind(error)
        if stop is None:
            raise
        return report(stop)
    finally:
        _received.clear()  # the next command (in the same process: tests) starts clean


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Around a script's imports: a signal while they load ends the process with the policy's line and status
    (SystemExit, so nothing is printed but that line)."""
    install()
    try:
        yield
    except BaseException as error:
        stop = stop_behind(error)
        if stop is None:
            raise
        raise SystemExit(report(stop)) from None
    pending = received()
    if pending is not None:  # raised inside a library that swallowed it
        raise SystemExit(report(pending))


@contextlib.contextmanager
def lightning_owns_sigterm() -> Iterator[None]:
    """Around ``trainer.fit``: SIGTERM left to Lightning (it finishes the current step, then stops with
    ``SIGTERMException``); SIGINT and SIGHUP still raise :class:`Stopped`. The policy's handler is back after."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread: nothing to hand over
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
