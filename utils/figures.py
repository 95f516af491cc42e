"""Pictures of results, drawn with PIL alone: image comparisons and line charts.

- :func:`comparison_figure`: rows of captioned image panels (e.g. degraded | restored | ground
  truth), each row with a title and an optional note (e.g. a predicted degradation).
- :func:`line_chart`: labelled lines against a common x axis, with axes, ticks and a legend
  (training curves).

Panels are shown at their own pixels (never resampled smoothly): images larger than ``crop``
are cut to the same centre window in every panel of a row, small ones are enlarged by an integer
factor (nearest neighbour) so that captions fit beneath them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
GRID = (225, 225, 225)
MUTED = (110, 110, 110)
# Distinguishable line colours (Okabe-Ito).
PALETTE = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233),
           (0, 0, 0), (240, 228, 66)]
PAD = 8
CROP = 256  # panels show at most this many pixels per side
MIN_PANEL = 192  # smaller images are enlarged by an integer factor up to about this size


@lru_cache(maxsize=8)
def font(size: int = 14) -> ImageFont.ImageFont:
    """PIL's default font at ``size`` pixels (Pillow >= 10.1), else its fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _text_size(text: str, fnt: ImageFont.ImageFont) -> tuple[int, int]:
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=fnt)
    return right - left, bottom - top


def to_uint8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, or float in [0, 1] (clipped, rounded) -> (H, W, 3) uint8."""
    if np.issubdtype(img.dtype, np.floating):
        return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    return img.astype(np.uint8)


def centre_window(height: int, width: int, size: int | None = CROP) -> tuple[slice, slice]:
    """The centre size x size window (the whole extent of a side shorter than size; None: the whole image)."""
    h, w = (height, width) if size is None else (min(size, height), min(size, width))
    top, left = (height - h) // 2, (width - w) // 2
    return slice(top, top + h), slice(left, left + w)


@dataclass
class Panel:
    """One image of a figure row: (H, W, 3) uint8 or float in [0, 1], and the caption under it
    (one or more lines, each shortened with an ellipsis to the panel's width)."""

    image: np.ndarray
    caption: str


@dataclass
class FigureRow:
    """A row of panels (all the same size) with a title above it and an optional note after the title."""

    title: str
    panels: list[Panel]
    note: str | None = None


def comparison_figure(rows: Sequence[FigureRow], title: str | None = None, crop: int | None = CROP) -> Image.Image:
    """Rows of captioned panels stacked vertically; images cropped to the same centre window per row
    (``crop`` pixels per side at most; None: whole images)."""
    title_font, row_font, caption_font = font(16), font(14), font(13)
    line_h = _text_size("Ag", caption_font)[1] + 5
    rendered: list[tuple[FigureRow, list[Image.Image]]] = []
    for row in rows:
        h, w = row.panels[0].image.shape[:2]
        if any(p.image.shape[:2] != (h, w) for p in row.panels):
            raise ValueError(f"figure row {row.title!r}: panels differ in size")
        window = centre_window(h, w, crop)
        shown_h, shown_w = window[0].stop - window[0].start, window[1].stop - window[1].start
        scale = max(1, MIN_PANEL // max(shown_h, shown_w))
        images = [Image.fromarray(to_uint8(p.image[window])).resize((shown_w * scale, shown_h * scale),
                                                                    Image.NEAREST) for p in row.panels]
        rendered.append((row, images))
    row_title_h = _text_size("Ag", row_font)[1] + 8
    figure_title_h = _text_size("Ag", title_font)[1] + 3 * PAD if title else 0
    caption_h = [line_h * max(p.caption.count("\n") + 1 for p in row.panels) + 4 for row, _ in rendered]
    width = max(
        *(sum(im.width for im in images) + PAD * (len(images) + 1) for _, images in rendered),
        *(_text_size(row.title + "  " + (row.note or ""), row_font)[0] + 2 * PAD for row, _ in rendered),
        _text_size(title, title_font)[0] + 2 * PAD if title else 0,
    )
    height = figure_title_h + sum(row_title_h + images[0].height + PAD for _, images in rendered) + sum(caption_h) + PAD
    figure = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(figure)
    y = PAD
    if title:
        draw.text((PAD, y), title, fill=INK, font=title_font)
        y = figure_title_h
    for (row, images), row_caption_h in zip(rendered, caption_h, strict=True):
        draw.text((PAD, y), row.title, fill=INK, font=row_font)
        if row.note:
            draw.text((PAD + _text_size(row.title + "  ", row_font)[0], y), row.note, fill=PALETTE[1], font=row_font)
        y += row_title_h
        x = PAD
        for panel, image in zip(row.panels, images, strict=True):
            figure.paste(image, (x, y))
            for i, line in enumerate(panel.caption.split("\n")):
                draw.text((x, y + image.height + 3 + i * line_h), _fit(line, image.width, caption_font), fill=INK,
                          font=caption_font)
            x += image.width + PAD
        y += images[0].height + row_caption_h + PAD
    return figure


def _fit(text: str, width: int, fnt: ImageFont.ImageFont) -> str:
    """text shortened with an ellipsis to fit in width pixels."""
    while len(text) > 1 and _text_size(text, fnt)[0] > width:
        text = text[:-2] + "…"
    return text


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as the tick step has (a step of 2.5 labels 2.5 and 5.0, not 2 and 5)."""
    if abs(value) >= 10000:
        return f"{value / 1000:g}k"
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9 * step:
        decimals += 1
    return f"{value:.{decimals}f}"


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
               size: tuple[int, int] = (640, 300), faint: dict[str, list[tuple[float, float]]] | None = None,
               levels: dict[str, float] | None = None) -> Image.Image:
    """Lines of (x, y) points, one per label, on shared axes with a legend; ``faint`` lines are drawn lightly
    underneath (e.g. raw values under their running mean); ``levels`` are labelled reference values, drawn as
    dashed horizontal lines in the legend's grey (e.g. a classical method's score). A series of one point is
    drawn as a dot."""
    width, height = size
    chart = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(chart)
    title_font, label_font = font(15), font(12)
    draw.text((PAD, PAD), title, fill=INK, font=title_font)
    levels = levels or {}
    points = [p for line in [*series.values(), *(faint or {}).values()] for p in line]
    if not points:
        draw.text((PAD, height // 2), "nothing logged yet", fill=MUTED, font=label_font)
        return chart
    xs, ys = [p[0] for p in points], [p[1] for p in points] + list(levels.values())
    margin = 0.06 * ((max(ys) - min(ys)) or abs(max(ys)) or 1.0)  # lines clear of the frame
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys) - margin, max(ys) + margin
    x_ticks = [v for v in _ticks(x_lo, x_hi) if x_lo <= v <= x_hi] or [x_lo]
    y_ticks = [v for v in _ticks(y_lo, y_hi) if y_lo <= v <= y_hi] or [(y_lo + y_hi) / 2]
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_labels = [_tick_label(v, y_step) for v in y_ticks]
    left = PAD + max(_text_size(s, label_font)[0] for s in y_labels) + 8
    top = PAD + _text_size(title, title_font)[1] + _text_size(y_label, label_font)[1] + 18
    legend_w = max(_text_size(name, label_font)[0] for name in [*series, *levels]) + 34 if series or levels else 0
    right, bottom = width - PAD - legend_w, height - PAD - 2 * (_text_size("0", label_font)[1] + 6)

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_lo) / ((x_hi - x_lo) or 1.0) * (right - left)
        py = bottom - (y - y_lo) / ((y_hi - y_lo) or 1.0) * (bottom - top)
        return px, py

    for value, text in zip(y_ticks, y_labels, strict=True):
        _, py = to_px(x_lo, value)
        draw.line([(left, py), (right, py)], fill=GRID)
        tw, th = _text_size(text, label_font)
        draw.text((left - tw - 6, py - th / 2 - 2), text, fill=MUTED, font=label_font)
    for value in x_ticks:
        px, _ = to_px(value, y_lo)
        draw.line([(px, top), (px, bottom)], fill=GRID)
        text = _tick_label(value, x_step)
        draw.text((px - _text_size(text, label_font)[0] / 2, bottom + 4), text, fill=MUTED, font=label_font)
    draw.rectangle([left, top, right, bottom], outline=MUTED)
    label_w = _text_size(x_label, label_font)[0]
    draw.text(((left + right - label_w) / 2, height - PAD - _text_size(x_label, label_font)[1] - 2), x_label,
              fill=INK, font=label_font)
    draw.text((left, top - _text_size(y_label, label_font)[1] - 6), y_label, fill=INK, font=label_font)

    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    for name, line in (faint or {}).items():
        colour = tuple(int(c + (255 - c) * 0.7) for c in colours.get(name, MUTED))
        _polyline(draw, [to_px(x, y) for x, y in line], colour, 1)
    for value in levels.values():
        (x0, y), (x1, _) = to_px(x_lo, value), to_px(x_hi, value)
        _dashed(draw, x0, x1, y, MUTED)
    for name, line in series.items():
        _polyline(draw, [to_px(x, y) for x, y in line], colours[name], 2)
    for i, name in enumerate([*series, *levels]):  # legend
        y = top + 4 + i * (_text_size("Ag", label_font)[1] + 8)
        if name in series:
            draw.line([(right + 10, y + 7), (right + 28, y + 7)], fill=colours[name], width=3)
        else:
            _dashed(draw, right + 10, right + 28, y + 7, MUTED)
        draw.text((right + 32, y), name, fill=INK, font=label_font)
    return chart


def _dashed(draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, colour, dash: float = 6.0) -> None:
    """A horizontal dashed line from x0 to x1 at height y (2 px, dashes and gaps of ``dash`` pixels)."""
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + dash, x1), y)], fill=colour, width=2)
        x += 2 * dash


def _polyline(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour, width: int) -> None:
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    elif points:
        draw.line(points, fill=colour, width=width, joint="curve")


def stack(images: Sequence[Image.Image]) -> Image.Image:
    """Images one above the other on a white background."""
    figure = Image.new("RGB", (max(im.width for im in images), sum(im.height for im in images)), BACKGROUND)
    y = 0
    for image in images:
        figure.paste(image, (0, y))
        y += image.height
    return figure
