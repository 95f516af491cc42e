"""Restore your own images with a DFPIR checkpoint.

    python demo.py --ckpt CHECKPOINT --degradation noise25 --input photo.jpg [--output_dir restored/]
    python demo.py --ckpt CHECKPOINT --degradation rain --input folder/ --tile 512 --compare
    python demo.py --ckpt CHECKPOINT --degradation auto --recognizer recognizer_5D.pt --input folder/

Any image size works: the image is padded to the network's size multiple (8 for DFPIR) and the
output cropped back, so the restored PNG has the input's size. ``--tile`` bounds memory on large
images. The demo never writes over an input (nor through a link to one), nor two inputs to one
output (``photo.jpg`` and ``photo.png``); an output file that exists is refused unless
``--overwrite`` is given, before the first image is restored, and every file is written atomically;
``--skip_errors`` goes on past an image it cannot read or restore and lists those
at the end.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from engine.cli import TILE_HINT, is_out_of_memory, run_cli
from engine.inference import Restorer, RestorerOptions
from engine.preflight import (
    Preflight,
    UsageError,
    config_problems,
    network_problems,
    print_config_and_exit,
    read_config,
    same_file,
    writable_dir,
)
from engine.prompt_tables import prompt_table_for
from engine.unused_options import note_unused_recognition
from net.checkpoint import Checkpoint, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.recognizer import DegradationRecognizer
from net.recognizer.checkpoint import recognizer_for
from net.registry import NetworkSpec, resolve_network
from net.run_options import RecognizerOption, checkpoint_option
from utils.config import build_parser as build_config_parser
from utils.config import opt, resolve
from utils.devices import device_problem, resolve_device
from utils.figures import FigureRow, Panel, comparison_figure
from utils.image_io import ImageReadError, image_size, is_image_file, read_rgb, write_png
from utils.outputs import OutputError, atomic_write, check_output
from utils.run_options import TilingOptions, overwrite_option
from utils.tasks import degradation_choices


@dataclass(frozen=True, kw_only=True)
class DemoConfig(RestorerOptions, RecognizerOption, TilingOptions):
    """demo.py's options (the network's, the recogniser's and tiling shared with the web app and the test scripts)."""

    ckpt: str = checkpoint_option()
    degradation: str = opt("--degradation", required=True, choices=lambda context: [*degradation_choices(), "auto"],
                           help="what to remove (the tasks' short names, utils/tasks.py); auto: what --recognizer "
                           "predicts for each image")
    input: str = opt("--input", required=True, help="an image file or a folder of images")
    output_dir: str = opt("--output_dir", default="restored", help="where restored PNGs are written")
    compare: bool = opt("--compare", default=False,
                        help="also write <name>_compare.png: the input and its restoration side by side")
    overwrite: bool = overwrite_option("restored images that already exist in --output_dir")
    skip_errors: bool = opt("--skip_errors", default=False,
                            help="go on past an image that cannot be read or restored (out of memory); list them at "
                            "the end")


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(DemoConfig, __doc__.split("\n\n")[0], config_file=True)


def input_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        if images:
            return images
        raise UsageError(f"--input {path} holds no images (png, jpg, jpeg, bmp, tif)")
    raise UsageError(f"--input {path} does not exist")


def decodable(image: Path) -> None:
    """ImageReadError (naming the file and the rerun that skips it) if ``image`` does not decode fully; the pixels
    are dropped, so a folder is checked in the memory of one image."""
    try:
        read_rgb(image, exif_orientation=True)
    except ImageReadError as err:
        raise ImageReadError(f"{err} Or pass --skip_errors to restore the other images.") from err


def output_names(image: Path, compare: bool = False) -> list[str]:
    """The files the demo writes for one input image (``--compare`` adds the side-by-side figure)."""
    return [f"{image.stem}.png"] + ([f"{image.stem}_compare.png"] if compare else [])


def output_problems(images: list[Path], out_dir: Path, compare: bool = False, overwrite: bool = False) -> list[str]:
    """Refusals before anything is written: outputs among the inputs (or linked to one), two inputs with one
    output, and outputs that exist (unless ``overwrite``)."""
    if any(same_file(folder, out_dir) for folder in {image.parent for image in images}):
        return [f"--output_dir {out_dir} is the folder of the input images: the restored PNGs would replace or "
                "mix with them; choose another folder"]
    problems = []
    by_output: dict[Path, list[Path]] = {}
    for image in images:
        for name in output_names(image, compare):
            by_output.setdefault(out_dir / name, []).append(image)
    for output, sources in by_output.items():
        if len(sources) > 1:
            problems.append(f"{' and '.join(map(str, sources))} would all be written to {output}; rename all but "
                            "one, or restore them into different --output_dir folders")
        try:
            check_output(output, overwrite=overwrite, inputs=images)
        except OutputError as err:
            problems.append(str(err))
    return problems


def _preflight(argv: list[str] | None) -> tuple[DemoConfig, list[Path], Checkpoint, NetworkSpec,
                                                 DegradationRecognizer | None] | None:
    """Every option and file of the demo, all problems at once (engine/preflight.py) -> (the configuration,
    images, checkpoint, the network to build, the recogniser of --degradation auto or None); None after
    --print_config."""
    checks = Preflight()
    given = read_config(DemoConfig, build_parser(), argv, {}, checks)
    args = resolve(DemoConfig, given)
    checks.add(config_problems(args, given))
    checks.add(device_problem(args.device))
    if print_config_and_exit(args, given, checks, "demo.py"):
        return None
    checks.raise_if_any()  # the files below are read only with usable options
    auto = args.degradation == "auto"
    checkpoint = checks.run(read_checkpoint, args.ckpt)
    network = checks.run(resolve_network, args.model, checkpoint)
    checks.add(network_problems(args, network))
    blind = network is not None and not network.uses_text_prompts
    if blind:  # options it does not use are noted, never refused (engine/unused_options.py)
        print(f"note: {network.describe()} is blind (it takes no text prompts): it restores whatever degradation "
              f"an image has, and --degradation {args.degradation} is not used", file=sys.stderr)
        note_unused_recognition(args, network)
    elif auto != (args.recognizer is not None):
        checks.add("--degradation auto needs --recognizer FILE (train one with: python train_recognizer.py)"
                   if auto else "--recognizer is used with --degradation auto")
    recognizer = None
    if auto and args.recognizer is not None and checkpoint is not None and not blind:
        recognizer = checks.run(recognizer_for, args.recognizer, None, checkpoint)
    if args.prompt_embeddings and not blind and (checkpoint is None or checkpoint.prompt_table is None):
        checks.run(load_prompt_file, args.prompt_embeddings, prompt_list(args.prompt_set))
    images = checks.run(input_images, Path(args.input)) or []
    if not args.skip_errors:  # headers only here (fully decoded by run(), after the weights are checked);
        for image in images:  # --skip_errors skips unreadable images as it meets them
            checks.run(image_size, image)
    # a folder that cannot be written is one problem, not one per output file
    checks.add(writable_dir(args.output_dir, "output_dir")
               or output_problems(images, Path(args.output_dir), args.compare, args.overwrite))
    checks.raise_if_any()
    return args, images, checkpoint, network, recognizer


def run(argv: list[str] | None) -> int:
    checked = _preflight(argv)
    if checked is None:  # --print_config
        return 0
    args, images, checkpoint, network, recognizer = checked
    if not network.uses_text_prompts:
        tasks = []
    else:
        tasks = recognizer.task_names if recognizer else [degradation_choices()[args.degradation]]
    table = prompt_table_for(args, checkpoint, tasks, network.text_dim)
    restorer = Restorer(checkpoint, network, table, recognizer, resolve_device(args.device))
    if not args.skip_errors:  # every input decodes before the first restoration: none fails after a write
        checks = Preflight()
        for image in images:
            checks.run(decodable, image)
        checks.raise_if_any()
    out_dir = Path(args.output_dir)
    skipped: list[str] = []
    written = 0
    for path in tqdm(images, desc=f"restoring ({args.degradation})", unit="image"):
        rerun = (f"; {written} image(s) are already in {out_dir}: add --overwrite to the rerun" if written else "")
        try:
            image = read_rgb(path, exif_orientation=True)
            result = restorer.restore(image, args.degradation, args.tile, args.tile_overlap)
        except ImageReadError as err:
            if not args.skip_errors:
                raise ImageReadError(f"{err} (or pass --skip_errors to go on with the other images{rerun})") from err
            skipped.append(str(err))
            continue
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            problem = f"{path}: out of memory; {TILE_HINT}"
            if not args.skip_errors:
                raise UsageError(f"{problem} (or pass --skip_errors to go on with the other images{rerun})") from err
            skipped.append(problem)
            if restorer.device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        if result.probabilities is not None:
            tqdm.write(f"{path.name}: {result.degradation} (probability {max(result.probabilities.values()):.2f})")
        restored_name, *compare_name = output_names(path, args.compare)
        write_png(out_dir / restored_name, result.image)
        written += 1
        if compare_name:
            row = FigureRow(path.name, [Panel(image / 255.0, "input"),
                                        Panel(result.image / 255.0, f"restored ({result.degradation})")])
            atomic_write(out_dir / compare_name[0], partial(comparison_figure([row], crop=None).save, format="PNG"))
    compared = " with side-by-side <name>_compare.png" if args.compare else ""
    print(f"wrote {len(images) - len(skipped)} image(s){compared} to {out_dir}/ (prompts: {table.source})")
    if skipped:
        print(f"skipped {len(skipped)} image(s) (--skip_errors):\n" + "\n".join(f"  - {s}" for s in skipped),
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: run(argv), out_of_memory_hint=TILE_HINT)


if __name__ == "__main__":
    sys.exit(main())
