"""The summary lines of ``benchmarks/gpu_train.sh``, read from the logs it wrote.

    python -m benchmarks.gpu_report OUT_DIR [--batch_size 5] [--val_every 2000]

One line per configuration: steps/s, ms/step, speedup over the faithful eager float32 step of the
same run, peak memory, first-step (compilation) time, validation time; then the data pipeline's
rate against what the fastest step consumes. A missing or failed log gives a line saying so.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

# (log name, label) of the training-loop runs, in the order gpu_train.sh runs them
LOOP_RUNS = (
    ("eager_fp32", "loop --precision 32 (eager)"),
    ("bf16_compile", "loop --precision bf16-mixed --compile"),
    ("fp32_compile", "loop --precision 32 --compile"),
)
COLD_COMPILES = {"bf16_compile": "warm_bf16", "fp32_compile": "warm_fp32"}
_NUMBER = r"([0-9.]+)"


@dataclass
class Speed:
    """The fields of one ``speed:`` line of a training run (``engine/callbacks.py``'s RunSummary)."""

    ms_per_step: float | None
    first_step_s: float | None
    validation_s: float | None
    peak_gib: float | None


def parse_speed(log: Path) -> Speed | None:
    """The last ``speed:`` line of a training log, or None if the log or the line is missing."""
    if not log.is_file():
        return None
    lines = re.findall(r"speed: [^\r\n]*", log.read_text(errors="replace"))  # after a progress bar's \r, too
    if not lines:
        return None
    line = lines[-1]

    def find(pattern: str) -> float | None:
        match = re.search(pattern, line)
        return float(match.group(1)) if match else None

    return Speed(find(rf"{_NUMBER} ms/step"), find(rf"first step {_NUMBER} s"), find(rf"validation {_NUMBER} s"),
                 find(rf"peak \w+ memory {_NUMBER} GiB"))


def parse_faithful_step(log: Path) -> tuple[float, float | None] | None:
    """(median ms, peak MiB) of the eager training row of ``benchmarks/benchmark.py``'s table."""
    if not log.is_file():
        return None
    for line in log.read_text(errors="replace").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0] == "train" and cells[2] == "eager":
            peak = float(cells[7]) if cells[7] not in ("", "n/a") else None
            return float(cells[5]), peak
    return None


def parse_data_rates(log: Path) -> dict[tuple[str, int], float]:
    """{(setting, workers): samples/s} from a ``benchmarks/bench_data.py`` table."""
    rates = {}
    if log.is_file():
        for line in log.read_text(errors="replace").splitlines():
            match = re.fullmatch(rf"\s*(\w+)\s+(\d+)\s+{_NUMBER}\s+{_NUMBER}", line)
            if match:
                rates[(match.group(1), int(match.group(2)))] = float(match.group(3))
    return rates


def report(out: Path, batch_size: int, val_every: int) -> list[str]:
    lines = []
    faithful = parse_faithful_step(out / "faithful_step.log")
    if faithful is None:
        lines.append("faithful eager fp32 step: no result (see faithful_step.log)")
        baseline = None
    else:
        baseline, peak_mib = faithful
        peak = f"{peak_mib / 1024:.2f} GiB" if peak_mib is not None else "n/a"
        lines.append(f"faithful eager fp32 step (benchmark.py, parity path): {1000 / baseline:.2f} steps/s, "
                     f"{baseline:.1f} ms/step, speedup 1.00, peak {peak}")
    fastest = None
    for name, label in LOOP_RUNS:
        speed = parse_speed(out / f"train_{name}.log")
        if speed is None or speed.ms_per_step is None:
            lines.append(f"{label}: no result (see train_{name}.log)")
            continue
        ms = speed.ms_per_step
        fastest = ms if fastest is None else min(fastest, ms)
        parts = [f"{1000 / ms:.2f} steps/s", f"{ms:.1f} ms/step",
                 f"speedup {baseline / ms:.2f}" if baseline else "speedup n/a",
                 f"peak {speed.peak_gib:.2f} GiB" if speed.peak_gib is not None else "peak n/a",
                 f"first step {speed.first_step_s:.1f} s"]
        cold = parse_speed(out / f"train_{COLD_COMPILES[name]}.log") if name in COLD_COMPILES else None
        if name in COLD_COMPILES:
            parts[-1] += " (compile from Inductor's cache)"
            parts.append(f"cold compile {cold.first_step_s:.1f} s (two at once)" if cold and cold.first_step_s
                         else "cold compile n/a")
        if speed.validation_s is not None:
            share = 100 * speed.validation_s / (val_every * ms / 1000)
            parts.append(f"validation {speed.validation_s:.1f} s = {share:.1f}% of the training time of "
                         f"{val_every} steps")
        lines.append(f"{label}: " + ", ".join(parts))
    one = parse_data_rates(out / "data_rate_one.log")
    full = parse_data_rates(out / "data_rate_all.log")
    need = batch_size / (fastest / 1000) if fastest else None
    for setting in sorted({s for s, _ in [*one, *full]}):
        per_worker = [rate for (s, w), rate in one.items() if s == setting]
        text = f"data {setting}: one worker {per_worker[0]:.1f} samples/s" if per_worker else f"data {setting}:"
        for (s, workers), rate in sorted(full.items()):
            if s == setting and workers > 0:
                text += f"; {workers} workers {rate:.1f} samples/s"
                if need:
                    text += f" = {rate / need:.1f}x the {need:.1f} samples/s of the fastest step"
        lines.append(text)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the OUT folder of gpu_train.sh")
    parser.add_argument("--batch_size", type=int, default=5, help="training batch size of the runs")
    parser.add_argument("--val_every", type=int, default=2000, help="the validation cadence to compare with")
    args = parser.parse_args(argv)
    for line in report(args.out, args.batch_size, args.val_every):
        print(line)


if __name__ == "__main__":
    main()
