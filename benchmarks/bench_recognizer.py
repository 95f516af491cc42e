"""The degradation recogniser's forward against DFPIR's, at one image size (issue 10: <= 5%).

    python benchmarks/bench_recognizer.py [--size 256] [--setting 5D] [--preset paper] [--repeats 7]

Both start from random weights (the cost does not depend on them) and get the same 1x3xSxS input.
DFPIR runs its fast path (``net.speed.prepare_for_speed``, what the scripts use; faster than the
faithful eager path, so the ratio is the stricter one), the recogniser runs as blind evaluation
runs it (``predict``: statistics, CNN, MLP, softmax). Calls are interleaved (DFPIR, recogniser,
DFPIR, ...) because a shared machine's speed drifts, after one warm-up call each; medians are
reported. The last line is ``ratio=<recogniser median / DFPIR median>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from net.dgpb import TEXT_DIM  # noqa: E402
from net.recognizer import DegradationRecognizer  # noqa: E402
from net.registry import create_model, model_names  # noqa: E402
from net.speed import prepare_for_speed  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="square input size")
    parser.add_argument("--setting", default="5D", choices=["3D", "5D"], help="the recogniser's setting")
    parser.add_argument("--preset", default="paper", choices=model_names(), help="DFPIR network (--model name)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    dfpir = prepare_for_speed(create_model(args.preset)).to(device).eval()
    recognizer = DegradationRecognizer(args.setting).to(device).eval()
    image = torch.rand(1, 3, args.size, args.size, device=device)
    code = torch.randn(1, TEXT_DIM, device=device)

    def timed(call) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    runs = {"dfpir": lambda: dfpir(image, code), "recognizer": lambda: recognizer.predict(image)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for call in runs.values():
        timed(call)  # warm-up
    for _ in range(args.repeats):
        for name, call in runs.items():
            times[name].append(timed(call))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"device={args.device} threads={torch.get_num_threads()} input=1x3x{args.size}x{args.size} "
          f"DFPIR preset={args.preset} (fast path), recogniser setting={args.setting}")
    for name, t in times.items():
        print(f"{name:>10}: median {medians[name] * 1e3:9.1f} ms  (min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f})")
    print(f"ratio={medians['recognizer'] / medians['dfpir']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
