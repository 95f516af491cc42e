#!/usr/bin/env bash
# GPU check of the training run (issue 4): a few hundred steps of the paper-size network at batch 5 x 128
# on the stand-in data, with the real training entry point. Each run prints "speed: ... steps/s ...;
# peak GPU memory ..." at its end. Usage: bash benchmarks/gpu_train.sh PROMPT_FILE [STEPS]
# Writes the logs to $OUT (default /tmp/dfpir_gpu) and a summary to $OUT/train_summary.txt.
# RUNS picks the runs (default: "bf16 fp32 bf16_compile").
set -euo pipefail
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
PROMPTS=${1:?give a prompt-table file (python -m net.prompts --export FILE)}
STEPS=${2:-300}
OUT=${OUT:-/tmp/dfpir_gpu}
DATA=/tmp/dfpir_sample
mkdir -p "$OUT"

"$PYTHON" -m data.sample "$DATA" --overwrite --scale 5 > /dev/null  # > 500 steps per epoch: no epoch-end save inside the timing
run() {  # name, extra flags...
    local name=$1; shift
    "$PYTHON" train_3D_DFPIR.py --data_root "$DATA" --prompt_embeddings "$PROMPTS" --device "${DEVICE:-cuda}" --num_workers 8 ${EXTRA_ARGS:-} \
        --max_steps "$STEPS" --val_every 0 --ckpt_every 0 --ckpt_dir "/tmp/dfpir_ckpt_$name" --logger csv "$@" \
        > "$OUT/train_$name.log" 2>&1
    echo "$name ($*): $(grep -h '^speed:' "$OUT/train_$name.log")" | tee -a "$OUT/train_summary.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } | tee "$OUT/train_summary.txt"
"$PYTHON" -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)" \
    | tee -a "$OUT/train_summary.txt"
for name in ${RUNS:-bf16 fp32 bf16_compile}; do
    case $name in
        bf16) run bf16 --precision bf16-mixed ;;
        fp32) run fp32 --precision 32 ;;
        bf16_compile) run bf16_compile --precision bf16-mixed --compile ;;
    esac
done
