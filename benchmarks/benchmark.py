"""A network's faithful eager path and its fast path, timed side by side in one run (issues 6, 22).

    python benchmarks/benchmark.py [--model paper|promptir|...] [--device cpu|cuda] [--quick] [--tune-malloc]

``--model`` picks the registered network (``net/registry.py``; default: DFPIR's ``paper``). A network
with text prompts gets a random text code per image; one without them (PromptIR,
``uses_text_prompts = False``) gets none.

Paths (rows of the table):

- ``eager``: the network exactly as ``tests/test_parity.py`` checks it: the reference
  formulations (``set_fast_path(False)``), float32, contiguous tensors, no compilation.
- ``fast``: ``net.speed.prepare_for_speed`` (fast formulations, channels_last, and on CUDA
  ``torch.compile``) run under ``--precision`` (float32 on CPU; bf16 autocast on CUDA). This is the
  same call the training and evaluation code makes, so the numbers are what users get.
- ``fast-fp32``: only when ``--precision`` is not fp32, and only for inference: the same prepared
  model in float32, to measure that the fast path itself keeps the function (bf16 does not,
  docs/protocol.md section 6).

Cases: inference (``eval``, ``no_grad``) on 1x3x128x128 and 1x3x256x256, and one training step
(forward, L1 loss, backward, a step of the network's recipe's optimiser: Adam for DFPIR as in
docs/protocol.md section 3, the recipe's own for another network) on 5x3x128x128, 2x3x128x128 with
``--quick``. Every path starts from the same random weights and gets the same inputs; the calls
are interleaved (eager, fast, eager, fast, ...) because this machine's speed drifts, and the
median is reported.

Columns:

- ``first s``: wall time of the first call; for a compiled path this is the compilation.
- ``median ms`` / ``range ms``: median and min-max of ``--repeats`` timed calls, after
  ``--warmup`` untimed ones (the first of which is the ``first s`` call).
- ``peak MiB``: the memory one call needs, measured on the last warm-up call. CPU: the rise of the
  process's peak resident memory (``VmHWM``) above its resident memory before the call, after
  freed memory has been handed back to the OS: every page the call touched (activations,
  gradients, optimiser state on the first step, temporaries, allocator slack). CUDA:
  ``torch.cuda.max_memory_allocated()`` above the memory allocated before the call (tensors only,
  not the caching allocator's reserve).
- ``speedup``: eager median / this path's median.
- ``max abs diff``: the largest |output - eager output| on the same input, from the first calls
  (for training: the forward output of the first step, before any weight update).

The last line is ``speedup infer256=<x> train=<y> max_abs_diff=<d>``: x and y from the fast row of
those cases, d the largest difference of any float32 fast row (fast, or fast-fp32).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from net.registry import CLIP_TEXT_DIM, DEFAULT_MODEL, NetworkSpec, model_names, recipe_of  # noqa: E402
from net.speed import glibc, prepare_for_speed, tune_glibc_malloc  # noqa: E402

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Case:
    """One measured workload: inference or a training step on (batch, 3, size, size) images."""

    name: str
    training: bool
    batch: int
    size: int

    @property
    def shape(self) -> str:
        return f"{self.batch}x3x{self.size}x{self.size}"


@dataclass
class PathSpec:
    """A way of running the network: reference or fast formulation, and the precision."""

    name: str
    fast: bool
    precision: str  # a key of PRECISIONS
    training: bool = True  # also measured on the training case


@dataclass
class Measurement:
    """What one path gave on one case. Times in seconds, memory in MiB, output on the CPU."""

    first_s: float
    times_s: list[float] = field(default_factory=list)
    peak_mib: float | None = None
    output: torch.Tensor | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


CASE_NAMES = ("infer128", "infer256", "train")


def default_cases(quick: bool, names: tuple[str, ...] = CASE_NAMES) -> list[Case]:
    """The issue's cases, in the order of ``names``. --quick trains on a batch of 2 instead of 5 (same patch)."""
    cases = {
        "infer128": Case("infer128", training=False, batch=1, size=128),
        "infer256": Case("infer256", training=False, batch=1, size=256),
        "train": Case("train", training=True, batch=2 if quick else 5, size=128),
    }
    return [cases[name] for name in names]


def default_paths(precision: str) -> list[PathSpec]:
    paths = [PathSpec("eager", fast=False, precision="fp32"), PathSpec("fast", fast=True, precision=precision)]
    if precision != "fp32":
        paths.append(PathSpec("fast-fp32", fast=True, precision="fp32", training=False))
    return paths


# ----------------------------------------------------------------------------------------------
# Models, inputs and the two kinds of step


def build_model(
    reference: nn.Module,
    path: PathSpec,
    device: torch.device,
    channels_last: bool,
    compile: bool,
    compile_mode: str | None = None,
) -> nn.Module:
    """A copy of ``reference`` on ``device``: the eager path as the parity test runs it, or prepared for speed."""
    model = copy.deepcopy(reference).to(device)
    if not path.fast:
        return model.set_fast_path(False)
    return prepare_for_speed(model, channels_last=channels_last, compile=compile, compile_mode=compile_mode)


def make_inputs(case: Case, device: torch.device, seed: int = 0, text_dim: int | None = CLIP_TEXT_DIM,
                ) -> dict[str, torch.Tensor | None]:
    """img, target (B, 3, S, S) in [0, 1] and text codes (B, text_dim), float32, from a fixed seed;
    text_dim None (a network without text prompts): ``text_code`` is None."""
    g = torch.Generator().manual_seed(seed)
    shape = (case.batch, 3, case.size, case.size)
    tensors = {"img": torch.rand(shape, generator=g), "target": torch.rand(shape, generator=g)}
    if text_dim is not None:
        tensors["text_code"] = torch.randn(case.batch, text_dim, generator=g)
    return {"text_code": None, **{name: t.to(device) for name, t in tensors.items()}}


def text_dim_of(network: NetworkSpec, model: nn.Module) -> int | None:
    """The width of the text codes ``model`` (built from ``network``) takes, None if it takes none
    (``uses_text_prompts = False``)."""
    return network.text_dim if getattr(model, "uses_text_prompts", True) else None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def new_step(device: torch.device) -> None:
    """Tell compiled CUDA graphs (--compile-mode reduce-overhead) that a new iteration begins."""
    if device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


def make_step(
    model: nn.Module, case: Case, inputs: dict[str, torch.Tensor | None], precision: str
) -> Callable[[], torch.Tensor]:
    """A call that runs ``case`` once and returns the network output (detached)."""
    device = inputs["img"].device
    if not case.training:
        model.eval()

        def inference() -> torch.Tensor:
            new_step(device)
            with torch.no_grad(), autocast(device, precision):
                return model(inputs["img"], inputs["text_code"])

        return inference

    model.train()
    recipe = recipe_of(model.architecture)  # DFPIR's: Adam lr 1e-4 (docs/protocol.md section 3)
    optimizer = recipe.optimizer(list(model.parameters()),
                                 {"lr": recipe.lr, "lr_schedule_epochs": recipe.lr_schedule_epochs})

    def training() -> torch.Tensor:
        new_step(device)
        with autocast(device, precision):
            output = model(inputs["img"], inputs["text_code"])
            loss = F.l1_loss(output.float(), inputs["target"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return output.detach()

    return training


# ----------------------------------------------------------------------------------------------
# Timing and memory


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, torch.Tensor]:
    """(wall seconds, output) of one call, waiting for the device before and after."""
    synchronize(device)
    start = time.perf_counter()
    output = step()
    synchronize(device)
    return time.perf_counter() - start, output


def _proc_status_kib(key: str) -> int:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in KiB."""
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {key} line")
    return int(match.group(1))


def _release_freed_cpu_memory() -> None:
    """Return freed heap memory to the OS (glibc), so resident memory starts from what is in use."""
    gc.collect()
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float | None]]:
    """Measure the peak memory the body adds (see the module docstring); yields {'mib': ...} set on exit.

    CPU measurement needs Linux's /proc/self/clear_refs (resets the peak); elsewhere it is None.
    """
    result: dict[str, float | None] = {"mib": None}
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield result
        synchronize(device)
        result["mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        return
    try:
        _release_freed_cpu_memory()
        base_kib = _proc_status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident size
    except OSError:
        yield result
        return
    yield result
    result["mib"] = (_proc_status_kib("VmHWM") - base_kib) / 1024


def measure_case(
    case: Case,
    models: dict[str, nn.Module],
    paths: list[PathSpec],
    device: torch.device,
    warmup: int,
    repeats: int,
    log: Callable[[str], None] = print,
    text_dim: int | None = CLIP_TEXT_DIM,
) -> dict[str, Measurement]:
    """Run every path on ``case``, interleaved: warm-up rounds, then timed rounds; ``text_dim``: the
    width of the networks' text codes (None: they take none, ``text_dim_of``).

    The first warm-up call of each path is timed on its own (compilation shows there) and gives
    the output compared between paths; the last warm-up call measures the peak memory.
    """
    inputs = make_inputs(case, device, text_dim=text_dim)
    steps = {p.name: make_step(models[p.name], case, inputs, p.precision) for p in paths}
    results: dict[str, Measurement] = {}
    for round_index in range(warmup):
        measure_memory = round_index == warmup - 1
        for name, step in steps.items():
            with peak_memory(device) if measure_memory else contextlib.nullcontext() as memory:
                seconds, output = timed(step, device)
            if round_index == 0:
                results[name] = Measurement(first_s=seconds, output=output.float().cpu())
                log(f"# {case.name} {case.shape} {name}: first call {seconds:.2f} s")
            if measure_memory:
                results[name].peak_mib = memory["mib"]
    for _ in range(repeats):
        for name, step in steps.items():
            results[name].times_s.append(timed(step, device)[0])
    for name, m in results.items():
        peak = "n/a" if m.peak_mib is None else f"{m.peak_mib:.0f} MiB"
        log(f"# {case.name} {name}: median {m.median_s * 1e3:.1f} ms over {len(m.times_s)} calls, peak {peak}, "
            f"max abs diff {max_abs_diff(m.output, results['eager'].output):.1e}")
    return results


def max_abs_diff(output: torch.Tensor, reference: torch.Tensor) -> float:
    return (output - reference).abs().max().item()


# ----------------------------------------------------------------------------------------------
# Report


COLUMNS = (
    "case", "shape", "path", "precision", "first s", "median ms", "range ms", "peak MiB", "speedup", "max abs diff"
)


def table_rows(case: Case, results: dict[str, Measurement], paths: list[PathSpec]) -> list[tuple[str, ...]]:
    eager = results["eager"]
    rows = []
    for path in paths:
        if path.name not in results:
            continue
        m = results[path.name]
        rows.append((
            case.name,
            case.shape,
            path.name,
            path.precision,
            f"{m.first_s:.2f}",
            f"{m.median_s * 1e3:.1f}",
            f"{min(m.times_s) * 1e3:.0f}-{max(m.times_s) * 1e3:.0f}",
            "n/a" if m.peak_mib is None else f"{m.peak_mib:.0f}",
            f"{eager.median_s / m.median_s:.2f}",
            f"{max_abs_diff(m.output, eager.output):.1e}",
        ))
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table (readable as text, pastable into RESULTS.md)."""
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(COLUMNS), line(tuple("-" * w for w in widths)), *map(line, rows)])


def summary_line(all_results: dict[str, dict[str, Measurement]], paths: list[PathSpec]) -> str:
    """``speedup infer256=<x> train=<y> max_abs_diff=<d>`` (see the module docstring)."""
    def speedup(case_name: str) -> str:
        results = all_results.get(case_name)
        if results is None:
            return "n/a"
        return f"{results['eager'].median_s / results['fast'].median_s:.2f}"

    fp32_fast = [p.name for p in paths if p.fast and p.precision == "fp32"]
    diffs = [
        max_abs_diff(results[name].output, results["eager"].output)
        for results in all_results.values()
        for name in fp32_fast
        if name in results
    ]
    d = f"{max(diffs):.2e}" if diffs else "n/a"
    return f"speedup infer256={speedup('infer256')} train={speedup('train')} max_abs_diff={d}"


def environment(device: torch.device, args: argparse.Namespace) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        backends = (
            f"cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}, "
            f"cudnn tf32 {torch.backends.cudnn.allow_tf32}, matmul tf32 {torch.backends.cuda.matmul.allow_tf32}"
        )
    else:
        cpuinfo = Path("/proc/cpuinfo")
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE) if cpuinfo.exists() else None
        name = model.group(1) if model else platform.processor() or "unknown CPU"
        backends = f"{torch.get_num_threads()} threads, malloc {'tuned' if args.tune_malloc else 'as launched'}"
    return (
        f"# {datetime.datetime.now():%Y-%m-%d %H:%M} | {name} | torch {torch.__version__} | {backends}\n"
        f"# model {args.model} | fast path: precision {args.precision}, channels_last {args.channels_last}, "
        f"compile {args.compile}{f' ({args.compile_mode})' if args.compile and args.compile_mode else ''} | "
        f"warmup {args.warmup}, repeats {args.repeats}"
    )


# ----------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="train on a batch of 2 instead of 5; on cpu 3 timed calls instead of 5")
    parser.add_argument("--cases", nargs="+", choices=CASE_NAMES, default=list(CASE_NAMES),
                        help="which cases to run, in this order (default: all)")
    parser.add_argument("--model", "--preset", dest="model", choices=model_names(), default=DEFAULT_MODEL,
                        help="registered network (--model of the scripts): paper (DFPIR), promptir, ...; "
                        "tiny / promptir_tiny: for tests")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default=None,
                        help="fast path precision (default: fp32 on cpu, bf16 autocast on cuda)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="channels_last on the fast path (default: on)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the fast path (default: on for cuda, off for cpu)")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls per path (default: 1 cpu, 3 cuda)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per path (default: cuda 20; cpu 5, 3 with --quick)")
    parser.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None,
                        help="CUDA, both paths: TF32 in convolutions and matmuls on/off (default: PyTorch's "
                             "defaults, TF32 convolutions: float32 outputs then differ by TF32 rounding)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, the core count)")
    parser.add_argument("--tune-malloc", action="store_true",
                        help="apply net.speed.tune_glibc_malloc() for the whole process (both paths)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA device")
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    args.compile = cuda if args.compile is None else args.compile
    if args.warmup is None:
        args.warmup = 3 if cuda else 1
    if args.repeats is None:
        args.repeats = 20 if cuda else 3 if args.quick else 5
    if args.warmup < 1 or args.repeats < 1:
        parser.error("--warmup and --repeats must be at least 1 (the first call is a warm-up call)")
    return args


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark, print the table and the summary line; returns the summary line."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tune_malloc and not tune_glibc_malloc():
        print("# --tune-malloc: not glibc, allocator left as it is")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both paths: fixed shapes, the fastest kernels
        if args.tf32 is not None:
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
    print(environment(device, args), flush=True)

    torch.manual_seed(0)
    network = NetworkSpec.of_model(args.model)
    reference = network.build()
    text_dim = text_dim_of(network, reference)
    paths = default_paths(args.precision)
    all_results: dict[str, dict[str, Measurement]] = {}
    rows: list[tuple[str, ...]] = []
    for case in default_cases(args.quick, tuple(args.cases)):
        case_paths = [p for p in paths if p.training or not case.training]
        models = {
            p.name: build_model(reference, p, device, args.channels_last, args.compile, args.compile_mode)
            for p in case_paths
        }
        results = measure_case(case, models, case_paths, device, args.warmup, args.repeats,
                               log=lambda s: print(s, flush=True), text_dim=text_dim)
        all_results[case.name] = results
        rows += table_rows(case, results, case_paths)
        del models
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(format_table(rows))
    summary = summary_line(all_results, paths)
    print(summary, flush=True)
    return summary


if __name__ == "__main__":
    main()
