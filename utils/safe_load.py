"""Why ``torch.load(weights_only=True)`` could not read a file, in words that never advise loading it unsafely.

When a file carries code (a pickle of objects that are not tensors or plain types), torch's
weights-only unpickler refuses it with a ``pickle.UnpicklingError`` whose message advises passing
``weights_only=False``, which would run that code. This project never gives that advice: its
messages name the refusal as UNSAFE and keep only the unpickler's own finding.

This module imports nothing of the project.
"""

from __future__ import annotations

import pickle
import re

# The unpickler's finding, without the advice torch appends ("Please use ...", "Check the documentation ...").
_FINDING = re.compile(r"WeightsUnpickler error:\s*(.*?)\.?\s*(?:Please\b|Check the documentation|$)", re.DOTALL)
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def refused_code(error: BaseException) -> str | None:
    """What the weights-only unpickler refused to run, e.g. 'the Python object __main__.Evil'; None when
    ``error`` is not such a refusal (a truncated or foreign file)."""
    if not isinstance(error, pickle.UnpicklingError):
        return None
    text = str(error)
    found = _GLOBAL.search(text)
    if found:
        return f"the Python object {found.group(1)}"
    finding = _FINDING.search(text)
    return " ".join(finding.group(1).split()) if finding else "Python objects besides tensors"


def unsafe_message(path: object, error: BaseException) -> str | None:
    """The one-line refusal of a file that carries code, None when ``error`` is not such a refusal."""
    code = refused_code(error)
    if code is None:
        return None
    return (f"{path} is UNSAFE: it carries code ({code}), not only tensors, and is never loaded: files are read "
            "with torch.load(weights_only=True), which runs no code from a file. Ask for a file of tensors only "
            "(torch.save(model.state_dict(), FILE) where it was made), or a safetensors file")


def load_error_text(error: BaseException) -> str:
    """``error`` in one line for a message: its type and first line; for a refusal of code, what was refused
    (never torch's advice)."""
    code = refused_code(error)
    if code is not None:
        return f"UNSAFE: it carries code ({code})"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def text_kind(head: bytes) -> str | None:
    """What a file that starts with ``head`` (its first 64 bytes) is when it is text, not a file torch.save wrote:
    'an HTML page (...)' (a web page saved instead of the file) or 'a text file (...)'; None otherwise."""
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml")):
        return (f"an HTML page (it starts with {head[:24]!r}): a web page was saved instead of the file; "
                "download the file itself")
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return f"a text file (it starts with {head[:24]!r})"
    return None
