#!/usr/bin/env bash
# Issue 9's and issue 31's GPU measurements in one prepared run (no internet; not yet run on a GPU: about
# 8 minutes estimated for steps 1-3 and 5, compilation included, and about 3 more for step 4 from the 211 ms
# eager step).
# Usage, from the repository root:
#     OUT=results bash benchmarks/gpu_train.sh
#     DEVICE=cpu QUICK=1 bash benchmarks/gpu_train.sh     # the same steps on the CPU, tiny preset (smoke test)
# What it runs (the summary in $OUT/train_summary.txt, every log appended to $OUT/logs.txt, the convergence
# outputs in $OUT/convergence_recipe/ and $OUT/convergence_mse/):
#  1. a real-size synthetic dataset (benchmarks/bench_data.py: training sets at their real sizes, and
#     the 3D validation sets at their real sizes and counts) and a prompt file of random codes;
#  2. at the same time: the cold compilations of the two compiled configurations (they fill Inductor's
#     cache, so the timed runs below start like a resume on the same machine) and tests/test_gpu.py
#     (GPU SSIM against scikit-image, no host sync inside a compiled step, resume);
#  3. one after the other, alone on the machine: the faithful eager float32 training step
#     (benchmarks/benchmark.py, the parity path: the baseline); the real training loop
#     (train_3D_DFPIR.py, Lightning, 16 workers) with --precision 32 (eager), bf16-mixed --compile
#     (with one validation at the real test-set sizes) and 32 --compile; the data pipeline's rate
#     with 0 and with all workers;
#  4. issue 31: benchmarks/convergence.py with the paper network on the generated 3D stand-in, batch 5 x 128,
#     CONV_STEPS steps (default 300) from lr 3e-4 annealed over them, once with its recipe's L1 loss and once
#     with --loss mse (tables in $OUT/convergence_recipe/ and $OUT/convergence_mse/, also in the summary);
#  5. one summary line per configuration (benchmarks/gpu_report.py). A failed or missing run gives a
#     "no result" line and the script goes on; if it is stopped early, `python -m benchmarks.gpu_report
#     $WORK/logs` prints the summary of what its logs hold.
set -euo pipefail
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/dfpir_gpu}
WORK=${WORK:-/tmp/dfpir_gpu_work}
CPUS=$(nproc)
if [ -n "${QUICK:-}" ]; then  # tiny network, batch 2 (as benchmark.py --quick), few steps and test images: checks the script
    BATCH=2; NET="--model tiny --patch_size 128 --batch_size $BATCH"; BENCH="--preset tiny --quick"
    STEPS=${STEPS:-24}; EAGER_STEPS=${EAGER_STEPS:-14}; VAL_AT=${VAL_AT:-16}; IMAGES=2; TEST_SCALE=0.01
    WORKERS=2; DATA_SAMPLES=40; DATA_SAMPLES_ONE=20
    CONV="--model tiny --batch_size 2 --patch_size 32 --steps ${CONV_STEPS:-4} --eval_every 2"
else
    BATCH=5; NET="--model paper --patch_size 128 --batch_size $BATCH"; BENCH="--preset paper"
    STEPS=${STEPS:-220}; EAGER_STEPS=${EAGER_STEPS:-40}; VAL_AT=${VAL_AT:-120}; IMAGES=24; TEST_SCALE=1
    WORKERS=${WORKERS:-$CPUS}; DATA_SAMPLES=2000; DATA_SAMPLES_ONE=$((DATA_SAMPLES / 15))
    CONV="--model paper --batch_size 5 --patch_size 128 --lr 3e-4 --steps ${CONV_STEPS:-300} --eval_every 50"
fi
DATA=$WORK/data
PROMPTS=$WORK/prompts.pt
LOGS=$WORK/logs  # every step's log; each is also appended to $OUT/logs.txt as soon as the step ends
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$WORK/inductor}
mkdir -p "$OUT" "$WORK"
rm -rf "$WORK"/ckpt_* "$LOGS" "$OUT/logs.txt"
mkdir -p "$LOGS"
SUMMARY=$OUT/train_summary.txt
start=$SECONDS
stamp() { echo "[$((SECONDS - start)) s] $*" | tee -a "$SUMMARY"; }
keep() { for name in "$@"; do echo "=== $name" >> "$OUT/logs.txt"; cat "$LOGS/$name.log" >> "$OUT/logs.txt" || true; done; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } \
    | tee "$SUMMARY"
"$PYTHON" -c "import torch, lightning, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'cudnn', torch.backends.cudnn.version(), 'lightning', lightning.__version__, 'python', platform.python_version(), \
'cpus', $CPUS)" | tee -a "$SUMMARY"

stamp "1. data and prompt file (random stand-in codes: no CLIP, no open_clip needed)"
[ -d "$DATA/Train" ] && [ -f "$PROMPTS" ] || "$PYTHON" -m benchmarks.bench_data --root "$DATA" --images $IMAGES \
    --test_sets --test_scale $TEST_SCALE --prompt_file "$PROMPTS" --write_only > "$LOGS/data_write.log" 2>&1
keep data_write

train() {  # name, flags...: one run of the real training loop, log in $LOGS/train_<name>.log
    local name=$1; shift
    "$PYTHON" train_3D_DFPIR.py --data_root "$DATA" --data_file_dir "$DATA/data_file_dir" \
        --prompt_embeddings "$PROMPTS" --device "$DEVICE" --num_workers $WORKERS $NET --logger csv \
        --ckpt_every 0 --ckpt_dir "$WORK/ckpt_$name" "$@" > "$LOGS/train_$name.log" 2>&1 \
        || stamp "train_$name failed (exit $?): see logs.txt"
    keep "train_$name"
}

stamp "2. cold compilations (two at once) and tests/test_gpu.py"
train warm_bf16 --precision bf16-mixed --compile --max_steps 2 --val_every 0 &
warm_bf16=$!
train warm_fp32 --precision 32 --compile --max_steps 2 --val_every 0 &
warm_fp32=$!
gpu_tests=0
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu.py > "$LOGS/test_gpu.log" 2>&1 || gpu_tests=$?
keep test_gpu
wait $warm_bf16 $warm_fp32

stamp "3. timed runs"
"$PYTHON" benchmarks/benchmark.py --device "$DEVICE" $BENCH --cases train --precision fp32 --no-compile \
    --warmup 3 --repeats 10 > "$LOGS/faithful_step.log" 2>&1 || stamp "benchmark.py failed: see logs.txt"
keep faithful_step
train eager_fp32 --precision 32 --max_steps $EAGER_STEPS --val_every 0
train bf16_compile --precision bf16-mixed --compile --max_steps $STEPS --val_every $VAL_AT
train fp32_compile --precision 32 --compile --max_steps $STEPS --val_every 0
"$PYTHON" -m benchmarks.bench_data --root "$DATA" --workers 0 --samples $DATA_SAMPLES_ONE \
    > "$LOGS/data_rate_one.log" 2>&1 || stamp "bench_data.py failed: see logs.txt"
"$PYTHON" -m benchmarks.bench_data --root "$DATA" --workers $WORKERS --samples $DATA_SAMPLES \
    > "$LOGS/data_rate_all.log" 2>&1 || stamp "bench_data.py failed: see logs.txt"
keep data_rate_one data_rate_all

stamp "4. convergence of the paper network on the stand-in, its recipe's loss and --loss mse (issue 31)"
for loss in recipe mse; do
    "$PYTHON" benchmarks/convergence.py $CONV --loss $loss --device "$DEVICE" --num_workers $WORKERS \
        --output_dir "$OUT/convergence_$loss" --overwrite > "$LOGS/convergence_$loss.log" 2>&1 \
        || stamp "convergence.py --loss $loss failed: see logs.txt"
    keep "convergence_$loss"
done

stamp "5. summary"
"$PYTHON" -m benchmarks.gpu_report "$LOGS" --batch_size $BATCH | tee -a "$SUMMARY"
for loss in recipe mse; do cat "$OUT/convergence_$loss/convergence.md" >> "$SUMMARY" 2>/dev/null || true; done
echo "tests/test_gpu.py: $(tail -n 1 "$LOGS/test_gpu.log") (exit $gpu_tests)" | tee -a "$SUMMARY"
stamp "done"
