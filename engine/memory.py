"""Memory a whole-image restoration takes, per pixel, measured for each registered model (issue 30, memory risk).

The web app lets a user switch tiling off; a large image restored whole can take more memory than the
machine has, and the kernel then kills the server with no message on the page. The app instead refuses
tiling "off" above :func:`untiled_pixel_limit` (the memory it may use divided by the measured bytes per pixel).

Method (``python benchmarks/memory_per_pixel.py``, figures in :data:`BYTES_PER_PIXEL` and docs/reliability.md): each
model restores a random image of 128 x 128 and of 256 x 256 pixels on the CPU in inference mode, each in a
fresh process; the process's peak resident memory (``ru_maxrss``) after each, minus the peak before the
restoration (the network and the libraries), divided by the pixels gives bytes per pixel; the figure is the
larger of the two sizes' (the fixed costs make the smaller size's higher, so this errs on the safe side).
Activations grow linearly with the pixels, so the figure holds for large images; the CUDA caching
allocator has similar needs per pixel on a GPU.
"""

from __future__ import annotations

import os

import torch

from net.registry import NetworkSpec

BYTES_PER_PIXEL: dict[str, int] = {  # benchmarks/memory_per_pixel.py, 2026-12-06, 2-core CPU, one thread, PyTorch 2.14
    "paper": 13_968,  # 128x128: 13,968; 256x256: 9,595
    "tiny": 3_276,  # 128x128: 3,276; 256x256: 3,071
    "promptir": 13_767,  # 128x128: 13,767; 256x256: 10,254
    "promptir_tiny": 4_262,  # 128x128: 3,690; 256x256: 4,262
}
"""Measured peak bytes per input pixel of a whole-image restoration on the CPU, by model name (net.registry.MODELS):
the larger of the two sizes' figures."""

UNKNOWN_BYTES_PER_PIXEL = max(BYTES_PER_PIXEL.values())
"""For a network of a custom configuration: the largest figure measured."""

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
