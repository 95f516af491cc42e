"""The quick start: generate the stand-in dataset, train DFPIR briefly on it, evaluate, print the table.

    python quickstart.py [--out quickstart] [--steps 60] [--model paper|tiny]

Runs offline on a CPU in minutes: if CLIP's weights cannot be downloaded, it says so and uses the
offline prompt encoder (recorded in the checkpoint). Scores on stand-in data after a few steps mean
nothing about the paper's numbers; the point is to see every stage run end to end.

The quick start only ever removes or replaces what it wrote itself. It marks its folder first
(``OUT/QUICKSTART.txt``); an existing non-empty folder without that marker is refused (exit 2)
before anything is written. A rerun in its own folder replaces its data/, checkpoints/ and results/
and leaves everything else there alone; two quick starts on one folder at once: the second exits 2.
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
from net.registry import DEFAULT_MODEL
from net.run_options import ModelOption
from utils.config import add_option, new_parser
from utils.devices import device_problem
from utils.outputs import OutputError, atomic_write, check_output_dir
from utils.run_lock import LockError, RunLock
from utils.run_options import DeviceOption
from utils.signals import run_stoppable

SETTING = "5D"  # all five degradations
MARKER_NAME = "QUICKSTART.txt"
MARKER_TEXT = "DFPIR quick start folder"
OWN_ENTRIES = ("data", "checkpoints", "results")
"""What the quick start writes in its folder, and so replaces on a rerun (besides its marker and lock)."""


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="quickstart",
                        help="folder for data, checkpoints and results: new, empty, or an earlier quick start's")
    parser.add_argument("--steps", type=int, default=60, help="training steps")
    add_option(parser, ModelOption, "model")
    parser.set_defaults(model=DEFAULT_MODEL)  # passed on to the training run, which starts from no checkpoint
    add_option(parser, DeviceOption, "device")
    return parser


def flag_problems(args: argparse.Namespace) -> list[str]:
    """Every flag of the quick start checked before anything is written (one line each, naming the quick start's
    own flag, not the training flag it becomes); --out is :func:`check_out_dir`'s."""
    problems = []
    if args.steps < 1:
        problems.append(f"--steps {args.steps}: must be 1 or more (the training steps of the quick start)")
    problems += [p for p in [device_problem(args.device)] if p]
    return problems


def is_quickstart_folder(out: Path) -> bool:
    """Whether ``out`` was made by the quick start (its marker file starts with :data:`MARKER_TEXT`)."""
    marker = out / MARKER_NAME
    return marker.is_file() and not marker.is_symlink() and marker.read_text(errors="replace").startswith(MARKER_TEXT)


def check_out_dir(out: Path) -> None:
    """Refuse ``--out`` before anything is written: not a writable folder, or a non-empty one the quick start
    did not make (OutputError, one line). Creates nothing."""
    check_output_dir(out)
    if out.is_dir() and any(out.iterdir()) and not is_quickstart_folder(out):
        raise OutputError(f"--out {out} is not empty and was not made by quickstart.py (no {MARKER_NAME}); "
                          f"choose a new or empty folder, e.g. --out quickstart_run")


def mark_folder(out: Path) -> None:
    """Write the marker that makes ``out`` the quick start's own folder."""
    atomic_write(out / MARKER_NAME, f"{MARKER_TEXT}, written by quickstart.py. A rerun in this folder replaces "
                                    f"{', '.join(e + '/' for e in OWN_ENTRIES)} here and nothing else.\n")


def remove_own_entries(out: Path) -> None:
    """Remove what an earlier quick start wrote in its folder ``out`` (a symlink is removed, not followed)."""
    for entry in (out / name for name in OWN_ENTRIES):
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            print(f"      removing the previous quick start's {entry}")
            shutil.rmtree(entry)


def main(argv: list[str] | None = None) -> int:
    """Run the quick start; exit status 2 with one line per problem if a flag is refused, or ``--out`` is refused or
    in use, before anything is written; 130/143/129 when stopped by Ctrl-C, SIGTERM, SIGHUP (``utils.signals``)."""
    return run_stoppable(lambda: _checked_run(build_parser().parse_args(argv)))


def _checked_run(args: argparse.Namespace) -> int:
    """Check every flag and --out, then run in the locked folder (:func:`main`)."""
    out = Path(args.out)
    problems = flag_problems(args)
    if problems:
        print("\n".join(f"error: {problem}" for problem in problems), file=sys.stderr)
        return 2
    try:
        check_out_dir(out)
        if not is_quickstart_folder(out):
            mark_folder(out)
        with RunLock(out, purpose="quick start folder --out"):
            return run(args, out)
    except (OutputError, LockError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, out: Path) -> int:
    """The three stages in the quick start's own, locked folder ``out``."""
    start = time.perf_counter()
    remove_own_entries(out)

    print(f"[1/3] stand-in dataset -> {out / 'data'}")
    counts = make_sample_dataset(out / "data")
    print("      " + ", ".join(f"{k}: {v}" for k, v in counts.items()))

    print(f"[2/3] training DFPIR ({args.model}) for {args.steps} steps on the {SETTING} mixture")
    ckpt_dir = out / "checkpoints"
    common = ["--data_root", str(out / "data"), "--device", args.device, "--num_workers", "2"]
    # The stand-in data has its own name lists (the default, the authors' lists, name the real benchmarks' files).
    code = train(SETTING, [*common, "--data_file_dir", str(out / "data" / "data_file_dir"), "--model", args.model,
                           "--ckpt_dir", str(ckpt_dir), "--max_steps", str(args.steps), "--batch_size", "4",
                           "--patch_size", "64", "--val_every", "0", "--prompt_backend", "auto", "--logger", "csv"])
    if code:
        return code

    print(f"[3/3] evaluating {ckpt_dir / 'last.ckpt'} on the stand-in test sets")
    code = evaluate(SETTING, [*common, "--ckpt", str(ckpt_dir / "last.ckpt"), "--output_path", str(out / "results"),
                              "--overwrite"])  # its own folder: a rerun replaces its earlier results
    print(f"quick start finished in {(time.perf_counter() - start) / 60:.1f} min; restored images in "
          f"{out / 'results'}/<task>/")
    return code


if __name__ == "__main__":
    sys.exit(main())
