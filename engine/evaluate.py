"""The evaluation run behind test_3D_DFPIR.py / test_5D_DFPIR.py (spec section 4)."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from data.datamodule import eval_loaders
from engine.common import UsageError, accelerator, apply_speed_options, prompt_table_for, run_cli
from engine.module import RestorationModule
from engine.report import write_results
from engine.scoring import EvalOptions
from net.checkpoint import load_pretrained, read_checkpoint
from net.dfpir import PRESETS
from options import build_test_parser, dataset_paths


def evaluate(setting: str, argv: list[str] | None = None) -> int:
    args = build_test_parser(setting).parse_args(argv)
    tasks = list(dict.fromkeys(args.tasks))
    paths = dataset_paths(args)
    checkpoint = read_checkpoint(args.ckpt)
    loaders = eval_loaders(tasks, paths, args.num_workers)  # validates the test folders
    if checkpoint.model_config is not None:
        if args.model is not None:
            raise UsageError(f"{args.ckpt} records its network configuration; drop --model")
        model_config = checkpoint.model_config
    else:
        model_config = PRESETS[args.model or "paper"]().to_dict()
    table = prompt_table_for(args, checkpoint, tasks)
    module = RestorationModule(model_config, table.to_dict(), checkpoint.prompt_set or args.prompt_set, setting, tasks)
    load_pretrained(module.net, checkpoint)
    apply_speed_options(module, args)
    output = Path(args.output_path)
    module.eval_options = EvalOptions(None if args.no_save_images else output, args.tile, args.tile_overlap)

    print(f"checkpoint: {args.ckpt} ({checkpoint.format} format); prompts: {table.source}")
    trainer = L.Trainer(accelerator=accelerator(args.device), devices=1, precision="32", logger=False,
                        enable_checkpointing=False, enable_model_summary=False)
    trainer.test(module, dataloaders=loaders, verbose=False)

    title = f"DFPIR {setting}: {Path(args.ckpt).name}"
    print("\n" + write_results(output, module.eval_results, setting, title))
    print(f"results: {output / 'results.json'}, {output / 'results.md'}"
          + ("" if args.no_save_images else f"; restored images: {output}/<task>/"))
    return 0


def main(setting: str, argv: list[str] | None = None) -> int:
    return run_cli(lambda: evaluate(setting, argv))
