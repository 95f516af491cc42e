"""Making DFPIR fast without changing its function (docs/protocol.md section 6; measured in benchmarks/).

- ``prepare_for_speed``: the model-side options, one call used by the training/evaluation code and
  by ``benchmarks/benchmark.py`` alike, so that what the benchmark measures is what users get.
- ``tune_glibc_malloc``: a process-wide allocator setting for CPU runs (opt-in, see its docstring).
- ``use_compile_cache``: where compiled graphs are kept, so later runs and resumes skip compiling.

Training with ``--compile`` compiles the whole training step instead
(``engine.module.RestorationModule.compile_training``); the per-block compilation below serves inference benchmarks.

Mixed precision is not a model option: wrap the forward in ``torch.autocast``. Unlike everything
here it changes the function (docs/protocol.md section 6), which is why it is a training choice
(``--precision``) and not a way to evaluate float32-trained checkpoints.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import torch
from torch import nn

COMPILED_GRAPHS_PER_BLOCK = 64  # e.g. 5 block shapes x (training, inference) x 2 precisions x 3 image sizes

COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"

# glibc's mallopt parameters (malloc.h) and the largest value its int argument takes.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MALLOPT_MAX = 2**31 - 1


def prepare_for_speed(
    model: nn.Module, channels_last: bool = True, compile: bool = False, compile_mode: str | None = None
) -> nn.Module:
    """Switch ``model`` (a registered network, ``net/registry.py``) to its fast formulation, in place;
    returns the same module. What it can do is asked of the network:

    - its fast path, if it has ``set_fast_path`` (DFPIR: every LayerNorm, attention and gate);
    - ``channels_last``: 4-D weights in channels_last memory format (:func:`to_channels_last`).
      Inputs may stay (B, 3, H, W) contiguous: the first convolution returns channels_last and
      every later layer keeps it. Depthwise convolutions, about a third of the CPU time, run 2-3x faster in this layout;
    - ``compile``: ``torch.compile`` each module of the network's ``compiled_blocks`` types
      (DFPIR: each Restormer block and DGPB), in place (regional compilation, static shapes), or
      the whole network in place if it names none. Blocks of the same width and resolution share one compiled
      graph, so compiling takes a fraction of the time a whole-model compile takes; the few
      layers between blocks (down/upsampling, skip concatenations) stay eager. In place, the
      state-dict keys stay those of the released checkpoints (``torch.compile(model)`` would
      prefix them with ``_orig_mod.``).
      The first call for each new input shape, precision and grad mode compiles; later calls are
      fast. Worth it on a GPU; on a 2-core CPU compiling takes minutes for about 10%.

    All options compute the same function as the reference formulation (within 1e-4 in float32,
    ``tests/test_speed.py``). Call it after loading weights; the optimizer may be built before or
    after (parameters are converted in place and stay the same objects).
    """
    set_fast_path = getattr(model, "set_fast_path", None)
    if set_fast_path is not None:
        set_fast_path(True)
    if channels_last:
        to_channels_last(model)
    if compile:
        # Shapes are static (fastest kernels, no dynamic-shape corner cases); each block shape,
        # precision and grad mode is one more cached graph of TransformerBlock.forward or
        # DGPB.forward, beyond dynamo's default of 8 per function (after which it runs eagerly).
        dynamo_config = torch._dynamo.config
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILED_GRAPHS_PER_BLOCK)
        blocks = tuple(getattr(model, "compiled_blocks", ()))
        if not blocks:
            model.compile(mode=compile_mode, dynamic=False)
        for module in model.modules() if blocks else ():
            if isinstance(module, blocks):
                module.compile(mode=compile_mode, dynamic=False)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model.to(memory_format=torch.channels_last)`` for the 4-D tensors only (the convolution
    weights), in place: ``Module.to`` refuses a model with a 5-D tensor, such as PromptIR's prompt
    components (1, L, D, S, S), which stay as they are. Parameters stay the same objects.

    Each weight is restrided with ``Tensor.to(memory_format=...)``, exactly as ``Module.to`` does,
    not with ``contiguous(memory_format=...)``: a weight with a size-1 dimension, the depthwise
    (C, 1, 3, 3) and pointwise (C_out, C_in, 1, 1) convolutions, already counts as channels_last
    contiguous with its NCHW strides, so ``contiguous`` returns it unchanged; the convolutions, which
    read the layout from the strides, take (C, 1, 3, 3) @ (9, 9, 3, 1) as NCHW, and the fast path
    lost most of its CPU speed-up that way (docs/speed.md). ``to`` writes the channels_last strides,
    (9, 1, 3, 1) here.
    """
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.dim() == 4:
                tensor.data = tensor.data.to(memory_format=torch.channels_last)
    return model


def use_compile_cache() -> Path:
    """Keep torch.compile's artefacts where later runs and resumes on this machine find them.

    Inductor caches compiled graphs (FX graph and AOTAutograd caches) and kernel autotuning
    results on disk, keyed by the graph, the torch version and the device, under
    ``$TORCHINDUCTOR_CACHE_DIR``; by default that is ``/tmp/torchinductor_<user>``, which many
    clusters wipe after every job. Unless the variable is set, this points it at
    ``$XDG_CACHE_HOME/dfpir/inductor`` (``~/.cache/dfpir/inductor``), so a run with the same
    network, batch, patch and precision loads its compiled step in seconds instead of compiling
    again. Call before the first compilation; returns the folder in use.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dfpir" / "inductor"
    return Path(os.environ.setdefault(COMPILE_CACHE_ENV, str(default)))


def tune_glibc_malloc() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    By default glibc serves every block above 32 MiB (most activations of DFPIR) with a fresh
    ``mmap`` and unmaps it on free, so each new tensor pays a page fault per 4 KiB: 30-40% of the
    CPU time of a forward (docs/protocol.md section 6). After this call freed blocks up to 2 GiB stay in the
    heap and are reused: a CPU forward or training step runs 1.1-1.75x faster with the same
    results (``benchmarks/RESULTS.md``). The cost: the process keeps its peak memory resident
    until it exits.

    Process-wide and for CPU work only (CUDA memory has its own caching allocator); call it once
    at start-up. The same effect without code: ``MALLOC_MMAP_THRESHOLD_=2147483647
    MALLOC_TRIM_THRESHOLD_=2147483647`` in the environment, or jemalloc/tcmalloc via ``LD_PRELOAD``.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MALLOPT_MAX) and libc.mallopt(_M_TRIM_THRESHOLD, _MALLOPT_MAX))


def glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (Linux), for mallopt/malloc_trim; else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL("libc.so.6")
