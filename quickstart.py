"""The quick start: generate the stand-in dataset, train DFPIR briefly on it, evaluate, print the table.

    python quickstart.py [--out quickstart] [--steps 60] [--model paper|tiny]

Runs offline on a CPU in minutes: if CLIP's weights cannot be downloaded, it says so and uses the
offline prompt encoder (recorded in the checkpoint). Scores on stand-in data after a few steps mean
nothing about the paper's numbers; the point is to see every stage run end to end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from data.sample import make_sample_dataset
from engine.evaluate import main as evaluate
from engine.train import main as train
from net.registry import model_names

SETTING = "5D"  # all five degradations


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="quickstart", help="folder for data, checkpoints and results")
    parser.add_argument("--steps", type=int, default=60, help="training steps")
    parser.add_argument("--model", default="paper", choices=model_names(), help="network")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    start = time.perf_counter()

    print(f"[1/3] stand-in dataset -> {out / 'data'}")
    counts = make_sample_dataset(out / "data", overwrite=True)
    print("      " + ", ".join(f"{k}: {v}" for k, v in counts.items()))

    print(f"[2/3] training DFPIR ({args.model}) for {args.steps} steps on the {SETTING} mixture")
    ckpt_dir = out / "checkpoints"
    if ckpt_dir.is_dir():  # the quick start's own previous run: a training never replaces another run's last.ckpt
        print(f"      removing the previous quick start's checkpoints in {ckpt_dir}")
        shutil.rmtree(ckpt_dir)
    common = ["--data_root", str(out / "data"), "--device", args.device, "--num_workers", "2"]
    # The stand-in data has its own name lists (the default, the authors' lists, name the real benchmarks' files).
    code = train(SETTING, [*common, "--data_file_dir", str(out / "data" / "data_file_dir"), "--model", args.model,
                           "--ckpt_dir", str(ckpt_dir), "--max_steps", str(args.steps), "--batch_size", "4",
                           "--patch_size", "64", "--val_every", "0", "--prompt_backend", "auto", "--logger", "csv"])
    if code:
        return code

    print(f"[3/3] evaluating {ckpt_dir / 'last.ckpt'} on the stand-in test sets")
    code = evaluate(SETTING, [*common, "--ckpt", str(ckpt_dir / "last.ckpt"), "--output_path", str(out / "results")])
    print(f"quick start finished in {(time.perf_counter() - start) / 60:.1f} min; restored images in "
          f"{out / 'results'}/<task>/")
    return code


if __name__ == "__main__":
    sys.exit(main())
