"""The evaluation run behind test_3D_DFPIR.py / test_5D_DFPIR.py (docs/protocol.md section 4).

Order of work: check every flag and file (``engine/preflight.py``) -> validate the test sets
(``data/check.py``) -> network -> one task after the other, with ``results.json`` and ``results.md``
rewritten after each task, so an interrupted evaluation keeps the tasks it finished.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from data.check import check_data
from data.datamodule import eval_loaders
from data.transforms import CROP_BASE
from engine.common import TILE_HINT, accelerator, apply_speed_options, prompt_table_for, recognizer_for, run_cli
from engine.compare import write_comparisons
from engine.module import RestorationModule
from engine.preflight import Preflight, TestFlags, flag_problems, weights_fit, writable_dir
from engine.report import with_average, write_results
from engine.scoring import EvalOptions, ImageRecord
from net.checkpoint import Checkpoint, load_pretrained, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.recognizer import DegradationRecognizer
from net.registry import NetworkSpec, resolve_network
from options import build_test_parser, dataset_paths
from utils.tasks import TASK_BY_ID


def _preflight(args, setting: str) -> tuple[Checkpoint, NetworkSpec, DegradationRecognizer | None]:
    """Every flag and file of an evaluation, all problems at once (engine/preflight.py) -> the checkpoint,
    the network to build (``net.registry.resolve_network``) and the recogniser of a blind evaluation or None."""
    checks = Preflight()
    if args.blind != (args.recognizer is not None):
        checks.add(f"--blind needs --recognizer FILE (train one with: python train_recognizer.py --setting {setting})"
                   if args.blind else "--recognizer is used with --blind; add --blind")
    checkpoint = checks.run(read_checkpoint, args.ckpt)
    network = checks.run(resolve_network, args.model, checkpoint)
    checks.run(weights_fit, network, checkpoint)  # before check_data decodes the test sets
    checks.add(flag_problems(TestFlags.of(args), network))
    recognizer = None
    if args.blind and args.recognizer is not None and checkpoint is not None:
        recognizer = checks.run(recognizer_for, args.recognizer, setting, checkpoint)
    if args.prompt_embeddings and (checkpoint is None or checkpoint.prompt_table is None):
        checks.run(load_prompt_file, args.prompt_embeddings, prompt_list(args.prompt_set))
    checks.add(writable_dir(args.output_path, "output_path"))
    checks.raise_if_any()
    return checkpoint, network, recognizer


def _predicted_note(record: ImageRecord) -> str:
    """A blind evaluation's figure note: the degradation the recogniser predicted."""
    return f"predicted: {TASK_BY_ID[record.predicted].name}"


def evaluate(setting: str, argv: list[str] | None = None) -> int:
    args = build_test_parser(setting).parse_args(argv)
    tasks = list(dict.fromkeys(args.tasks))
    paths = dataset_paths(args)
    checkpoint, network, recognizer = _preflight(args, setting)
    for line in check_data([], setting, tasks, paths, CROP_BASE, num_workers=max(args.num_workers, 1)).lines:
        print(line)
    table = prompt_table_for(args, checkpoint, tasks + (recognizer.task_names if recognizer else []),
                             network.text_dim)
    module = RestorationModule(network.config, table.to_dict(), checkpoint.prompt_set or args.prompt_set, setting,
                               tasks, architecture=network.architecture)
    load_pretrained(module.net, checkpoint)
    apply_speed_options(module, args)
    module.recognizer = recognizer
    output = Path(args.output_path)
    module.eval_options = EvalOptions(None if args.no_save_images else output, args.tile, args.tile_overlap)

    print(f"checkpoint: {args.ckpt} ({checkpoint.format} format); prompts: {table.source}"
          + (f"; blind: degradations recognised by {args.recognizer}" if recognizer else ""))
    trainer = L.Trainer(accelerator=accelerator(args.device), devices=1, precision="32", logger=False,
                        enable_checkpointing=False, enable_model_summary=False)
    title = f"DFPIR {setting}: {Path(args.ckpt).name}"
    if recognizer is not None:
        title += f", blind ({Path(args.recognizer).name})"
    device = torch.device("cuda" if accelerator(args.device) != "cpu" and torch.cuda.is_available() else "cpu")
    scored: dict[str, dict[str, float]] = {}
    figures: dict[str, str] = {}
    legacy_noise = setting if args.legacy_noise else None  # the authors' test-noise draw
    for task, loader in zip(tasks, eval_loaders(tasks, paths, args.num_workers, legacy_noise=legacy_noise),
                            strict=True):
        trainer.test(module, dataloaders=loader, verbose=False)
        scored[task] = module.eval_results[task]
        figures.update(write_comparisons(module, [loader.dataset], module.eval_records, output, device,
                                         _predicted_note if recognizer else None))
        markdown = write_results(output, with_average(scored), setting, title, figures)  # kept if a later task fails

    print("\n" + markdown)
    print(f"results: {output / 'results.json'}, {output / 'results.md'}; figures: {output}/compare_<task>.png"
          + ("" if args.no_save_images else f"; restored images: {output}/<task>/"))
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    return run_cli(lambda: evaluate(setting, argv), out_of_memory_hint=TILE_HINT)
