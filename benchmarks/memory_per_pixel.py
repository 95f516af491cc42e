"""Measure the memory a whole-image restoration takes per pixel, for each registered model (engine/memory.py).

    python benchmarks/memory_per_pixel.py [--models paper tiny promptir promptir_tiny]

Each model restores a random 128 x 128 and 256 x 256 image on the CPU (one thread, inference mode), each in a
fresh process; the process's peak resident memory (``ru_maxrss``) after the restoration minus before it (after a
16 x 16 warm-up), divided by the pixels. Copy the larger figure of each model into
``engine.memory.BYTES_PER_PIXEL`` and docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = (128, 256)
"""Image sides measured."""

_MEASURE = """
import json, resource, sys, torch
from net.registry import NetworkSpec
name, side = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
network = NetworkSpec.of_model(name)
net = network.build().eval()
code = torch.randn(1, network.text_dim) if network.uses_text_prompts else None
image = torch.rand(1, 3, side, side)
with torch.inference_mode():
    net(torch.rand(1, 3, 16, 16), code)  # the libraries' first-call buffers, before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    net(image, code)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"bytes": (after - before) * 1024}))
"""


def measure(model: str, side: int) -> float:
    """Peak bytes per pixel of ``model`` restoring a ``side`` x ``side`` image whole, in a fresh process."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, model, str(side)], capture_output=True, text=True,
                            check=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])["bytes"] / (side * side)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures of ``engine.memory.BYTES_PER_PIXEL``."""
    parser = argparse.ArgumentParser(prog="python benchmarks/memory_per_pixel.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["paper", "tiny", "promptir", "promptir_tiny"])
    args = parser.parse_args(argv)
    for model in args.models:
        figures = {side: measure(model, side) for side in SIZES}
        print(f"{model}: " + ", ".join(f"{side}x{side}: {value:,.0f} B/px" for side, value in figures.items()),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
