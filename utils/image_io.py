"""Reading any image file as 8-bit RGB, and writing PNGs.

Every image the data pipeline touches goes through :func:`read_rgb`, so all datasets share one
decoding rule. It decodes with PIL exactly as the reference pipeline does
(``Image.open(path).convert('RGB')``), so ordinary 8-bit RGB, grayscale and JPEG files give
bit-identical arrays and the metrics match the reference's.

Where this deliberately differs from the reference: 16-bit grayscale files (PIL modes ``I;16*``,
``I``), which PIL's ``convert('RGB')`` saturates to 255 above a value of 255, are reduced to 8 bits
here (see :func:`read_rgb`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from utils.outputs import atomic_write

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
"""File extensions treated as images (compare lower-cased, e.g. ``path.suffix.lower()``)."""

_SIXTEEN_BIT_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

T = TypeVar("T")
R = TypeVar("R")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file and says what to do."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive); no I/O."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


DAMAGED_ADVICE = "Replace the file with a complete copy (re-download or re-extract it) or remove it from the dataset."
"""What to do about a file that does not decode (truncated, corrupt)."""


def _read_error(path: Path, reason: str, advice: str = DAMAGED_ADVICE) -> ImageReadError:
    return ImageReadError(f"cannot read image {path}: {reason}. {advice}")


def _decode_error(path: Path, err: Exception) -> ImageReadError:
    """The ImageReadError of an exception PIL raised: a file too large to decode safely is named as such (its
    size and the limit), not as a damaged download; anything else is a damaged file."""
    if isinstance(err, Image.DecompressionBombError):
        return _read_error(path, f"it is larger than the {Image.MAX_IMAGE_PIXELS * 2:,} pixels this program decodes "
                           "(PIL's guard against decompression bombs)", "Scale it down, or cut it into parts.")
    return _read_error(path, f"{type(err).__name__}: {err}")


def read_rgb(path: str | os.PathLike[str], exif_orientation: bool = False) -> np.ndarray:
    """Decode an image file fully into an (H, W, 3) uint8 RGB array.

    - 8-bit files of any PIL mode (RGB, L, 1, P, PA, LA, RGBA, CMYK, YCbCr ...) are converted with
      PIL's ``convert('RGB')``, exactly as the reference pipeline does; alpha is dropped (not
      composited).
    - 16-bit files are reduced to their high byte, floor(x / 256), which maps 0 -> 0,
      65535 -> 255 and every 8-bit value scaled by 257 back to itself. For 16-bit RGB(A) PNG and
      TIFF files this is what PIL itself does, so they read as in the reference pipeline; 16-bit
      grayscale (PIL modes ``I;16*``, and ``I``, clipped to [0, 65535]), which PIL's
      ``convert('RGB')`` would saturate, get the same rule here and are replicated to 3 channels.
    - EXIF orientation: not applied by default (neither does the reference): pixels are used as
      stored, so a degraded image and its clean partner stay aligned whatever their metadata says.
      ``exif_orientation=True`` (the demo and the web app, for a user's photos) rotates/flips the
      image as a photo viewer shows it.

    Raises ImageReadError (naming the file) for missing, unreadable, truncated or corrupt files and
    for floating-point images, whose value range is unknown.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            if exif_orientation:
                image = ImageOps.exif_transpose(image)
            if image.mode == "F":
                raise _read_error(path, "it holds floating-point samples, which are not supported (their value "
                                  "range is unknown)", "Save it as an 8- or 16-bit PNG or TIFF.")
            if image.mode in _SIXTEEN_BIT_GRAY_MODES:
                wide = np.asarray(image).astype(np.int64)
                gray = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
                return np.repeat(gray[:, :, None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except ImageReadError:
        raise
    except FileNotFoundError as err:
        raise _read_error(path, "the file does not exist") from err
    except _DECODE_ERRORS as err:
        raise _decode_error(path, err) from err


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of an image file, read from its header only (no pixel decoding)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError as err:
        raise _read_error(path, "the file does not exist") from err
    except _DECODE_ERRORS as err:
        raise _decode_error(path, err) from err
    return height, width


def write_png(path: str | os.PathLike[str], img: np.ndarray) -> None:
    """Write an RGB image as PNG, creating parent folders, atomically (``utils.outputs.atomic_write``: an
    earlier file is replaced whole or left unchanged; WriteError on a full disk).

    img: (H, W, 3) uint8, or floating point in [0, 1] (clipped to [0, 1], times 255, rounded).
    """
    path = Path(path)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"write_png({path}): expected an (H, W, 3) array, got shape {img.shape}")
    if np.issubdtype(img.dtype, np.floating):
        img = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"write_png({path}): expected uint8 or float in [0, 1], got dtype {img.dtype}")
    image = Image.fromarray(np.ascontiguousarray(img), mode="RGB")
    atomic_write(path, lambda file: image.save(file, format="PNG"))


def parallel_map(
    fn: Callable[[T], R], items: Iterable[T], num_workers: int, desc: str | None = None, unit: str = "file"
) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, in order, computed by ``num_workers`` threads.

    Meant for decoding many image files: PIL releases the GIL while decoding, so threads scale
    with cores. At most ``4 * num_workers`` results are in flight, so memory stays flat for long
    lists. A tqdm progress bar on stderr, counting ``unit``, is shown when ``desc`` is given.
    ``num_workers <= 1`` runs in the calling thread. An exception raised by ``fn`` propagates and
    cancels what is still queued.
    """
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=desc is None, dynamic_ncols=True)
    try:
        if num_workers <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        pool = ThreadPoolExecutor(max_workers=num_workers)
        try:
            todo = iter(items)
            pending = deque(pool.submit(fn, item) for item in islice(todo, 4 * num_workers))
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(fn, item) for item in islice(todo, 1))
                bar.update()
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
