"""Training curves: ``<ckpt_dir>/curves.png``, the training loss and the validation PSNR per test set
against the step, read from the run's own logs (TensorBoard event files or CSV ``metrics.csv``).

Written at the end of every training run; to look at a run in progress:

    python -m engine.curves --ckpt_dir checkpoints/DFPIR_3D

A resumed run logs into a new ``logs/version_N/`` and continues the step count; the versions are
joined, and where they overlap (steps logged after the last checkpoint of an interrupted run) the
later run's values win.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from PIL import Image

from utils.config import new_parser
from utils.figures import line_chart, stack
from utils.outputs import OutputError, atomic_write
from utils.tasks import TASKS

CURVES_NAME = "curves.png"
LOGS_DIR = "logs"  # engine/train.py: the loggers' name under --ckpt_dir
_VAL_TASK_PSNR = re.compile(r"val_(\w+)_psnr")

Series = list[tuple[int, float]]


def _read_version(version_dir: Path) -> dict[str, Series]:
    """{tag: [(step, value)]} of one logger version folder (TensorBoard events, else metrics.csv)."""
    if any(version_dir.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

        events = EventAccumulator(str(version_dir), size_guidance={SCALARS: 0})  # 0: keep every point
        events.Reload()
        return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()[SCALARS]}
    metrics: dict[str, Series] = {}
    if (version_dir / "metrics.csv").is_file():
        with open(version_dir / "metrics.csv", newline="") as f:
            for row in csv.DictReader(f):
                for tag, value in row.items():
                    if tag not in ("step", "epoch") and value:
                        metrics.setdefault(tag, []).append((int(row["step"]), float(value)))
    return metrics


def read_run_logs(log_root: str | Path) -> dict[str, Series]:
    """{tag: [(step, value)] sorted by step} over every ``version_*`` folder of a run's logs."""
    versions = sorted(Path(log_root).glob("version_*"), key=lambda p: int(p.name.split("_")[-1] or 0))
    merged: dict[str, Series] = {}
    for version in versions:
        for tag, points in _read_version(version).items():
            if points:
                first = min(step for step, _ in points)
                merged[tag] = [p for p in merged.get(tag, []) if p[0] < first] + sorted(points)
    return merged


def running_mean(points: Series, window: int) -> Series:
    """Mean of the last ``window`` values at every point (the trend of a noisy per-batch loss)."""
    out, total = [], 0.0
    for i, (step, value) in enumerate(points):
        total += value - (points[i - window][1] if i >= window else 0.0)
        out.append((step, total / min(i + 1, window)))
    return out


def curves_figure(metrics: dict[str, Series], title: str = "") -> Image.Image:
    """Two charts: the training loss (raw, and its running mean) and the validation PSNR per test set."""
    loss = metrics.get("loss", [])
    window = max(1, len(loss) // 20)
    trend = {"loss" + (f" (mean of {window})" if window > 1 else ""): running_mean(loss, window)} if loss else {}
    faint = {next(iter(trend)): loss} if window > 1 else None
    validation = {
        TASKS[m.group(1)].test_set if m.group(1) in TASKS else m.group(1): points
        for tag, points in metrics.items() if (m := _VAL_TASK_PSNR.fullmatch(tag))
    }
    if "val_psnr" in metrics:
        validation["average"] = metrics["val_psnr"]
    return stack([
        line_chart(trend, f"{title}training loss".strip(), "step", "the recipe's loss", faint=faint),
        line_chart(validation, "validation PSNR per test set", "step", "PSNR (dB)"),
    ])


def write_curves(ckpt_dir: str | Path) -> Path:
    """Draw ``<ckpt_dir>/curves.png`` from ``<ckpt_dir>/logs`` (replaced atomically); returns its path."""
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / CURVES_NAME
    figure = curves_figure(read_run_logs(ckpt_dir / LOGS_DIR), f"{ckpt_dir.name}: ")
    return atomic_write(path, lambda file: figure.save(file, format="PNG", optimize=True))


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(__doc__.split("\n\n")[0], prog="python -m engine.curves")
    parser.add_argument("--ckpt_dir", required=True, metavar="DIR", help="the training run's --ckpt_dir")
    args = parser.parse_args(argv)
    if not (Path(args.ckpt_dir) / LOGS_DIR).is_dir():
        print(f"error: {args.ckpt_dir}/{LOGS_DIR} does not exist; give the --ckpt_dir of a training run",
              file=sys.stderr)
        return 2
    try:
        print(f"wrote {write_curves(args.ckpt_dir)}")
    except OutputError as err:  # a full disk: the earlier curves.png is intact
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
