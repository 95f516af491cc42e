"""The evaluation run behind test_3D_DFPIR.py / test_5D_DFPIR.py (docs/protocol.md section 4).

Order of work: the configuration (``options.EvalConfig``: flags > ``--config`` file > the setting,
``utils.config.resolve``) -> check every option, every checkpoint (readable, fits its network) and the output
folder (``engine/preflight.py``; an earlier run's outputs are refused without ``--overwrite``) ->
validate the test sets (``data/check.py``) -> one checkpoint after the other (its network built,
evaluated, freed), each on the same test loaders (the same crops and noise, the ``--legacy_noise``
draw made once), one task after the other, with ``results.json`` and ``results.md`` rewritten after
each task, so an interrupted evaluation keeps the tasks it finished. The resolved configuration is
written first, as ``<output_path>/config.yaml``.

One report path (``engine.report.write_results``, docs/evaluation.md): one ``--ckpt`` is a comparison
of one, every checkpoint's row beside its own network's published row ("not published" where there
is none). One checkpoint keeps the single results.json layout and its restored images in
``<output_path>/<task>/``; several are keyed by label, their images in ``<output_path>/<label>/<task>/``.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from data.check import check_data
from data.datamodule import eval_loaders
from data.layouts import task_folder
from data.transforms import CROP_BASE
from engine.cli import TILE_HINT, run_cli
from engine.compare import FIGURE_NAME, ComparisonFigure
from engine.module import RestorationModule, apply_speed_options
from engine.preflight import (
    Preflight,
    UsageError,
    config_problems,
    network_problems,
    print_config_and_exit,
    read_config,
    weights_fit,
    writable_dir,
    write_run_config,
)
from engine.prompt_tables import prompt_table_for
from engine.report import CheckpointResults, with_average, write_results
from engine.scoring import EvalOptions, ImageRecord
from engine.unused_options import note_unused_recognition
from net.checkpoint import Checkpoint, load_pretrained, read_checkpoint
from net.prompts import load_prompt_file, prompt_list
from net.recognizer import DegradationRecognizer
from net.recognizer.checkpoint import recognizer_for
from net.registry import NetworkSpec, resolve_network
from options import EvalConfig, build_test_parser, eval_setting_defaults
from utils.config import CONFIG_NAME, resolve
from utils.devices import device_problem, lightning_accelerator, resolve_device
from utils.outputs import check_separate_folders
from utils.tasks import TASK_BY_ID, TASKS

RESULT_FILES = ("results.json", "results.md")
NOT_TRAINED = "not trained on this task"
"""The mark of a result on a task the checkpoint's training run did not train on (--allow_untrained_tasks)."""


@dataclass
class Candidate:
    """One checkpoint to evaluate: its label (``--label``, else the file name), the path as given, the
    read checkpoint and the network it is built into (``net.registry.resolve_network``)."""

    label: str
    path: str
    checkpoint: Checkpoint
    network: NetworkSpec


def checkpoint_labels(paths: list[str], labels: list[str] | None) -> list[str]:
    """The label of each ``--ckpt``: ``--label`` (one per checkpoint), else the file name. UsageError
    when the counts differ, or a label is not a plain folder name or is not unique (with several:
    each names a folder of restored images)."""
    if labels is not None and len(labels) != len(paths):
        raise UsageError(f"--label was given {len(labels)} times for {len(paths)} --ckpt; give one --label per "
                         "--ckpt, in the same order")
    labels = labels or [Path(path).name for path in paths]
    for label in labels:
        if not label or label.startswith(".") or "/" in label or "\\" in label or label in RESULT_FILES:
            raise UsageError(f"--label {label!r}: a label names a folder of restored images; use a plain name "
                             "(no '/', not starting with '.')")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if len(paths) > 1 and repeated:
        raise UsageError(f"several --ckpt have the label {repeated[0]!r}; name each with --label (one per --ckpt), "
                         "e.g. --label dfpir --label promptir")
    return labels


def image_folders(output: Path, tasks: list[str], labels: list[str]) -> list[Path]:
    """Where the restored images go: ``<output>/<task>/`` (one checkpoint), ``<output>/<label>/<task>/`` (several)."""
    parents = [output] if len(labels) == 1 else [output / label for label in labels]
    return [parent / task for parent in parents for task in tasks]


def earlier_outputs(output: Path, tasks: list[str], folders: list[Path]) -> list[str]:
    """The files of ``output`` this run would write that exist already (results, the run's config.yaml,
    figures, restored-image folders that hold files), relative to ``output``."""
    files = [output / name for name in (*RESULT_FILES, CONFIG_NAME, *(FIGURE_NAME.format(task=t) for t in tasks))]
    found = [str(f.relative_to(output)) for f in files if os.path.lexists(f)]
    found += [f"{folder.relative_to(output)}/" for folder in folders if folder.is_dir() and any(folder.iterdir())]
    return found


def overwrite_problem(output: Path, tasks: list[str], folders: list[Path], overwrite: bool) -> str | None:
    """The refusal of an output folder holding an earlier run's outputs (one line), None if there are none
    or ``--overwrite`` was given."""
    found = [] if overwrite else earlier_outputs(output, tasks, folders)
    if not found:
        return None
    listed = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    return (f"--output_path {output} holds an earlier run's {listed}; pass --overwrite to replace them, "
            "or choose another --output_path")


def untrained_problem(path: str, checkpoint: Checkpoint, tasks: list[str], allowed: bool) -> str | None:
    """The refusal (one line) of evaluating ``checkpoint`` on tasks its training run did not train on (its
    scores there would stand beside the paper's as if trained), None if there are none or ``allowed``."""
    untrained = checkpoint.untrained(tasks)
    if not untrained or allowed:
        return None
    trained = checkpoint.trained_tasks
    return (f"--ckpt {path} was trained on {' '.join(trained)} only, not on {' '.join(untrained)}; choose "
            f"--tasks among those it was trained on, or pass --allow_untrained_tasks to score them anyway "
            "(their rows are marked 'not trained on this task')")


def mark_untrained(results: dict, untrained: list[str]) -> dict:
    """``results`` (with its average) with each task of ``untrained`` marked (:data:`NOT_TRAINED`), and the
    average too when it includes one."""
    marked = {task: {**entry, "note": NOT_TRAINED} if task in untrained else entry for task, entry in results.items()}
    if any(task in results for task in untrained):
        marked["average"] = {**results["average"], "note": "includes tasks it was not trained on"}
    return marked


def default_output_path(networks: list[NetworkSpec], setting: str) -> str:
    """--output_path when not given: named after the checkpoints' networks, each once, in the order given
    (outputs/DFPIR_3D; several checkpoints of DFPIR and PromptIR: outputs/DFPIR_vs_PromptIR_3D)."""
    names = dict.fromkeys(network.display_name for network in networks)
    return f"outputs/{'_vs_'.join(names)}_{setting}"


def _preflight(setting: str, argv: list[str] | None) -> tuple[EvalConfig, list[Candidate],
                                                              DegradationRecognizer | None] | None:
    """Every option and file of an evaluation, all problems at once (engine/preflight.py) -> the resolved
    configuration, the checkpoints with their networks (each readable and fitting its network) and the
    recogniser of a blind evaluation or None; None after --print_config. Nothing is decoded or written
    before this passes."""
    checks = Preflight()
    context = {"setting": setting, "split": "test"}
    given = read_config(EvalConfig, build_test_parser(setting), argv, context, checks)
    setting_defaults = eval_setting_defaults(setting)
    args = resolve(EvalConfig, given, None, setting_defaults, context)
    tasks = list(dict.fromkeys(args.tasks))
    if args.blind != (args.recognizer is not None):
        checks.add(f"--blind needs --recognizer FILE (train one with: python train_recognizer.py --setting {setting})"
                   if args.blind else "--recognizer is used with --blind; add --blind")
    labels = checks.run(checkpoint_labels, args.ckpt, args.label)
    candidates: list[Candidate] = []
    problems: list[str] = []
    networks: list[NetworkSpec] = []
    for path, label in zip(args.ckpt, labels or args.ckpt, strict=True):
        checkpoint = checks.run(read_checkpoint, path)
        network = checks.run(resolve_network, args.model, checkpoint)
        if checkpoint is not None and network is not None:
            networks.append(network)
            candidate = Candidate(label, path, checkpoint, network)
            known = len(checks.problems)
            checks.run(weights_fit, network, checkpoint)  # before check_data decodes the test sets
            checks.add(untrained_problem(path, checkpoint, tasks, args.allow_untrained_tasks))
            if len(checks.problems) == known:
                candidates.append(candidate)
        problems += network_problems(args, network)
    if networks:
        setting_defaults["output_path"] = default_output_path(networks, setting)
        args = resolve(EvalConfig, given, None, setting_defaults, context)
    checks.add(config_problems(args, given))
    checks.add(list(dict.fromkeys(problems)))  # the same flag problem once, whatever the number of networks
    checks.add(device_problem(args.device))
    if print_config_and_exit(args, given, checks, f"test_{setting}_DFPIR.py"):
        return None
    recognizer = None
    for candidate in candidates:
        note_unused_recognition(args, candidate.network)  # --blind applies to the networks with text prompts
        if args.blind and args.recognizer is not None and candidate.network.uses_text_prompts:
            recognizer = checks.run(recognizer_for, args.recognizer, setting, candidate.checkpoint) or recognizer
    # read where a network with text prompts would use it; for the others a note (engine.prompt_tables)
    if args.prompt_embeddings and (not candidates or any(c.network.uses_text_prompts and c.checkpoint.prompt_table
                                                         is None for c in candidates)):
        checks.run(load_prompt_file, args.prompt_embeddings, prompt_list(args.prompt_set))
    unwritable = writable_dir(args.output_path, "output_path") if args.output_path else None
    checks.add(unwritable)
    if unwritable is None and labels is not None and args.output_path:
        output, paths = Path(args.output_path), args.dataset_paths()
        folders = [] if args.no_save_images else image_folders(output, tasks, labels)
        checks.add(overwrite_problem(output, tasks, folders, args.overwrite))
        for folder in folders:  # restored images written into a test set would be read as its inputs next time
            for task in tasks:
                test_dir, flag = task_folder(TASKS[task].kind, "test", paths)
                checks.run(check_separate_folders, ("--output_path's folder", folder), (f"--{flag}", test_dir))
    checks.raise_if_any()
    return args, candidates, recognizer


def build_module(args: EvalConfig, setting: str, tasks: list[str], candidate: Candidate,
                 recognizer: DegradationRecognizer | None) -> tuple[RestorationModule, str]:
    """The evaluated module of one checkpoint: its network with the checkpoint's weights (strict), its
    prompt table, the speed options and the recogniser; and where its prompt table came from."""
    checkpoint, network = candidate.checkpoint, candidate.network
    table = prompt_table_for(args, checkpoint, tasks + (recognizer.task_names if recognizer else []),
                             network.text_dim)
    module = RestorationModule(network.config, table.to_dict(), checkpoint.prompt_set or args.prompt_set, setting,
                               tasks, architecture=network.architecture)
    load_pretrained(module.net, checkpoint)
    apply_speed_options(module, args)
    module.recognizer = recognizer if network.uses_text_prompts else None  # a blind network: a no-op (noted)
    return module, table.source


def _predicted_note(record: ImageRecord) -> str:
    """A blind evaluation's figure note: the degradation the recogniser predicted."""
    return f"predicted: {TASK_BY_ID[record.predicted].name}"


def _free(device: torch.device) -> None:
    """Hand a freed checkpoint's memory back before the next one is built."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def evaluate(setting: str, argv: list[str] | None = None) -> int:
    checked = _preflight(setting, argv)
    if checked is None:  # --print_config
        return 0
    args, candidates, recognizer = checked
    tasks = list(dict.fromkeys(args.tasks))
    paths = args.dataset_paths()
    for line in check_data([], setting, tasks, paths, CROP_BASE, num_workers=max(args.num_workers, 1)).lines:
        print(line)
    output = Path(args.output_path)
    write_run_config(output, args, f"test_{setting}_DFPIR.py")  # rerun with --config <output_path>/config.yaml
    several = len(candidates) > 1
    blind = f", blind ({Path(args.recognizer).name})" if recognizer is not None else ""
    title = (f"{setting}: {', '.join(c.label for c in candidates)}" if several
             else f"{candidates[0].network.display_name} {setting}: {Path(candidates[0].path).name}") + blind
    device = resolve_device(args.device)
    # Built once: every checkpoint restores the same inputs (crops, noise, the --legacy_noise draw).
    loaders = eval_loaders(tasks, paths, args.num_workers, legacy_noise=setting if args.legacy_noise else None)
    figures: dict[str, ComparisonFigure] = {}
    figure_names: dict[str, str] = {}
    entries: list[CheckpointResults] = []
    for candidate in candidates:
        module, prompt_source = build_module(args, setting, tasks, candidate, recognizer)
        save_dir = None if args.no_save_images else output / candidate.label if several else output
        module.eval_options = EvalOptions(save_dir, args.tile, args.tile_overlap)
        print(f"checkpoint: {candidate.path} ({candidate.checkpoint.format} format); prompts: {prompt_source}"
              + (f"; blind: degradations recognised by {args.recognizer}" if module.recognizer else ""))
        trainer = L.Trainer(accelerator=lightning_accelerator(args.device), devices=1, precision="32", logger=False,
                            enable_checkpointing=False, enable_model_summary=False)
        caption = candidate.label if several else (args.label or [candidate.network.display_name])[0]
        scored: dict[str, dict] = {}
        for task, loader in zip(tasks, loaders, strict=True):
            trainer.test(module, dataloaders=loader, verbose=False)
            scored[task] = module.eval_results[task]
            figure = figures.setdefault(task, ComparisonFigure(loader.dataset, module.eval_records))
            figure.add(caption, module, module.eval_records, device, _predicted_note if module.recognizer else None)
            name = figure.save(output)
            if name is not None:
                figure_names[task] = name
            entry = CheckpointResults(candidate.label, candidate.path, candidate.network.architecture,
                                      candidate.network.describe(),
                                      mark_untrained(with_average(scored), candidate.checkpoint.untrained(tasks)))
            markdown = write_results(output, [*entries, entry], setting, tasks, title, figure_names)
            # results.json / results.md are kept if a later task fails
        entries.append(entry)
        del module, trainer
        _free(device)

    print("\n" + markdown)
    images = ("" if args.no_save_images else
              f"; restored images: {output}/<label>/<task>/" if several else f"; restored images: {output}/<task>/")
    print(f"results: {output / 'results.json'}, {output / 'results.md'}; figures: {output}/compare_<task>.png"
          + images)
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    return run_cli(lambda: evaluate(setting, argv), out_of_memory_hint=TILE_HINT)
