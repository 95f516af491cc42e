"""Memory a whole-image restoration takes, per pixel, measured for each registered model (issue 30, memory risk).

The web app lets a user switch tiling off; a large image restored whole can take more memory than the
machine has, and the kernel then kills the server with no message on the page. The app instead refuses
tiling "off" above :func:`untiled_pixel_limit` (the memory it may use divided by the measured bytes per pixel).

Method (``python -m engine.memory``, figures in :data:`BYTES_PER_PIXEL` and docs/reliability.md): each
model restores a random image of 128 x 128 and of 256 x 256 pixels on the CPU in inference mode, each in a
fresh process; the process's peak resident memory (``ru_maxrss``) after each, minus the peak before the
restoration (the network and the libraries), divided by the pixels gives bytes per pixel; the figure is the
larger of the two sizes' (the fixed costs make the smaller size's higher, so this errs on the safe side).
Activations grow linearly with the pixels, so the figure holds for large images; the CUDA caching
allocator has similar needs per pixel on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from net.registry import NetworkSpec

BYTES_PER_PIXEL: dict[str, int] = {  # python -m engine.memory, 2026-12-06, 2-core CPU, one thread, PyTorch 2.14
    "paper": 13_968,  # 128x128: 13,968; 256x256: 9,595
    "tiny": 3_276,  # 128x128: 3,276; 256x256: 3,071
    "promptir": 13_767,  # 128x128: 13,767; 256x256: 10,254
    "promptir_tiny": 4_262,  # 128x128: 3,690; 256x256: 4,262
}
"""Measured peak bytes per input pixel of a whole-image restoration on the CPU, by model name (net.registry.MODELS):
the larger of the two sizes' figures."""

UNKNOWN_BYTES_PER_PIXEL = max(BYTES_PER_PIXEL.values())
"""For a network of a custom configuration: the largest figure measured."""

SIZES = (128, 256)
"""Image sides measured."""


def bytes_per_pixel(network: NetworkSpec) -> int:
    """The measured figure of ``network``'s model (net.registry.MODELS), the largest one for a custom configuration."""
    names = [name for name in BYTES_PER_PIXEL if network.same_network(NetworkSpec.of_model(name))]
    return BYTES_PER_PIXEL[names[0]] if names else UNKNOWN_BYTES_PER_PIXEL


def untiled_pixel_limit(network: NetworkSpec, available_bytes: int) -> int:
    """The largest image (in pixels) ``network`` restores whole within ``available_bytes``."""
    return available_bytes // bytes_per_pixel(network)


def available_memory(device: torch.device) -> int:
    """Bytes a restoration may take on ``device``: the free memory of a GPU, else the memory the kernel reports
    available (``MemAvailable``, Linux), else half the physical memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


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
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["bytes"] / (side * side)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.memory [--models ...]``: measure and print the figures of :data:`BYTES_PER_PIXEL`."""
    parser = argparse.ArgumentParser(prog="python -m engine.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(BYTES_PER_PIXEL))
    args = parser.parse_args(argv)
    for model in args.models:
        figures = {side: measure(model, side) for side in SIZES}
        print(f"{model}: " + ", ".join(f"{side}x{side}: {value:,.0f} B/px" for side, value in figures.items()),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
