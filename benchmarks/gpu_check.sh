#!/usr/bin/env bash
# One prepared GPU run of the speed benchmark (issue 6): eager float32 vs the fast path (bf16
# autocast + torch.compile + channels_last) at full sizes, on one CUDA GPU, in at most ~8 minutes.
#
#   OUT=/path/to/results bash benchmarks/gpu_check.sh        (from anywhere; runs in the repo root)
#
# Writes everything it prints to "$OUT/benchmark_cuda.txt". Needs torch with CUDA; einops and numpy
# are installed from wheels in .whl/ when missing. Optional: PYTHON (default python3),
# BENCH_TIMEOUT (seconds for the benchmark, default 450), BENCH_ARGS (extra benchmark options,
# e.g. "--compile-mode reduce-overhead" or "--no-tf32").
# Measured on an H100 (2026-11-26, benchmarks/RESULTS.md): 412 s wall; compilation 156 s for the
# training step and 40-55 s per inference case and precision; the machine's start comes on top.
set -euo pipefail
export PYTHONUNBUFFERED=1

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/benchmark_cuda.txt"
: >"$LOG"
say() { echo "$@" | tee -a "$LOG"; }

say "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "# nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1)"

missing=$("$PYTHON" -c 'import importlib.util as u; print(*[m for m in ("einops", "numpy") if u.find_spec(m) is None])')
if [ -n "$missing" ]; then
    if [ -d .whl ]; then
        say "# installing from .whl/ (missing: $missing)"
        "$PYTHON" -m pip install -q --no-index --no-deps .whl/*.whl 2>&1 | tee -a "$LOG"
    else
        say "# missing Python packages: $missing, and no .whl/ folder to install them from"
        exit 1
    fi
fi

"$PYTHON" - 2>&1 <<'PY' | tee -a "$LOG"
import sys, torch, triton
print(f"# python {sys.version.split()[0]} | torch {torch.__version__} | cuda {torch.version.cuda} | "
      f"cudnn {torch.backends.cudnn.version()} | triton {triton.__version__}")
assert torch.cuda.is_available(), "PyTorch sees no CUDA device"
print(f"# device: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
PY

# Training first: it carries the issue's GPU target (train >= 3) and the longest compilation.
# "first s" of the fast rows is the compilation; median/range are steady-state.
timeout "${BENCH_TIMEOUT:-450}" "$PYTHON" benchmarks/benchmark.py --device cuda \
    --cases train infer128 infer256 ${BENCH_ARGS:-} 2>&1 | tee -a "$LOG"
say "# gpu_check done $(date -u '+%H:%M:%S UTC')"
