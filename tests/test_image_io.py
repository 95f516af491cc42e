"""utils.image_io: every image kind reads as 8-bit RGB like PIL's convert('RGB'), bad files name themselves."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.image_io import IMAGE_EXTENSIONS, ImageReadError, image_size, parallel_map, read_rgb, write_png

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (21, 34, 3), dtype=np.uint8)


def png_16bit(path: Path, pixels: np.ndarray) -> Path:
    """Write (H, W, C) uint16 as a 16-bit PNG by hand (PIL cannot write 16-bit RGB); C = 1 or 3."""
    h, w, c = pixels.shape
    color_type = {1: 0, 3: 2}[c]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def test_extensions_are_lowercase_and_complete():
    assert IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".JPG"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_8bit_rgb_is_identical_to_pil_convert(tmp_path, fmt, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(RGB).save(path, format=fmt)
    img = read_rgb(path)
    assert img.dtype == np.uint8 and img.shape == (21, 34, 3)
    assert np.array_equal(img, np.asarray(Image.open(path).convert("RGB")))
    if fmt != "JPEG":
        assert np.array_equal(img, RGB)


@pytest.mark.parametrize("mode", ["L", "1", "P", "RGBA", "LA", "CMYK"])
def test_other_8bit_modes_become_rgb(tmp_path, mode):
    source = Image.fromarray(RGB)
    image = source.quantize(16) if mode == "P" else source.convert(mode)
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    image.save(path)
    img = read_rgb(path)
    assert img.dtype == np.uint8 and img.shape == (21, 34, 3)
    assert np.array_equal(img, np.asarray(Image.open(path).convert("RGB")))


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.concatenate([RGB, np.zeros((21, 34, 1), np.uint8)], axis=2)  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_rgb(tmp_path / "a.png"), RGB)


def test_grayscale_replicates_to_three_channels(tmp_path):
    Image.fromarray(RGB[:, :, 0], "L").save(tmp_path / "g.png")
    img = read_rgb(tmp_path / "g.png")
    assert np.array_equal(img, np.repeat(RGB[:, :, :1], 3, axis=2))


def test_16bit_grayscale_keeps_the_high_byte(tmp_path):
    values = np.array([0, 255, 256, 257 * 100, 32767, 32768, 65534, 65535], np.uint16)
    path = png_16bit(tmp_path / "g16.png", values.reshape(1, -1, 1))
    assert Image.open(path).mode.startswith("I;16")
    img = read_rgb(path)
    expected = np.array([0, 0, 1, 100, 127, 128, 255, 255], np.uint8)  # floor(x / 256)
    assert img.dtype == np.uint8 and img.shape == (1, 8, 3)
    assert np.array_equal(img, np.repeat(expected[None, :, None], 3, axis=2))


def test_16bit_rgb_matches_pil_high_byte(tmp_path):
    wide = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    path = png_16bit(tmp_path / "rgb16.png", wide)
    img = read_rgb(path)
    assert np.array_equal(img, (wide >> 8).astype(np.uint8))
    assert np.array_equal(img, np.asarray(Image.open(path).convert("RGB")))


def test_32bit_integer_image_is_treated_as_16bit(tmp_path):
    Image.fromarray(np.array([[0, 65535, 70000, -5]], np.int32), "I").save(tmp_path / "i.tif")
    assert np.array_equal(read_rgb(tmp_path / "i.tif")[0, :, 0], [0, 255, 255, 0])


def test_float_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match=r"f\.tif.*floating-point"):
        read_rgb(tmp_path / "f.tif")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_names_itself(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(RNG.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(path, format=fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageReadError, match=rf"(?i){re.escape(str(path))}.*truncated"):
        read_rgb(path)
    assert image_size(path) == (120, 90)  # the header alone is intact


def test_garbage_and_missing_files_name_themselves(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match=r"junk\.png.*re-download"):
        read_rgb(tmp_path / "junk.png")
    with pytest.raises(ImageReadError, match=r"nothere\.png.*does not exist"):
        read_rgb(tmp_path / "nothere.png")
    with pytest.raises(ImageReadError, match=r"nothere\.png"):
        image_size(tmp_path / "nothere.png")


def test_image_size_is_height_width(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.jpg")
    assert image_size(tmp_path / "x.jpg") == (21, 34)


def test_write_png_uint8_round_trip_and_parent_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "x.png"
    write_png(path, RGB)
    assert np.array_equal(read_rgb(path), RGB)


def test_write_png_float_clips_and_rounds(tmp_path):
    img = np.array([[[-0.5, 0.0, 1 / 255 * 0.6], [0.5, 1.0, 7.0]]], np.float32)
    write_png(tmp_path / "f.png", img)
    assert read_rgb(tmp_path / "f.png").tolist() == [[[0, 0, 1], [128, 255, 255]]]


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.int32)])
def test_write_png_rejects_other_arrays(tmp_path, bad):
    with pytest.raises(ValueError, match=r"bad\.png"):
        write_png(tmp_path / "bad.png", bad)


@pytest.mark.parametrize("workers", [0, 3])
def test_parallel_map_keeps_order(workers):
    assert list(parallel_map(lambda x: x * x, range(50), workers)) == [x * x for x in range(50)]


def test_parallel_map_propagates_errors():
    def fail_on_7(x: int) -> int:
        if x == 7:
            raise ImageReadError("seven")
        return x

    with pytest.raises(ImageReadError, match="seven"):
        list(parallel_map(fail_on_7, range(100), 2))


def test_exif_orientation_is_applied_only_when_asked(tmp_path):
    """A phone photo stored sideways (EXIF Orientation 6: rotate 90 degrees clockwise to view) reads upright
    for the demo and the web app; the data pipeline keeps the stored pixels."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(RGB).save(tmp_path / "phone.png", exif=exif)
    assert np.array_equal(read_rgb(tmp_path / "phone.png"), RGB)
    assert np.array_equal(read_rgb(tmp_path / "phone.png", exif_orientation=True), np.rot90(RGB, k=-1))
