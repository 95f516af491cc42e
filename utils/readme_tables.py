"""The task and dataset tables of docs/datasets.md, derived from the records:
``python -m utils.tasks [--update-readme]``.

docs/datasets.md holds each table between ``<!-- tasks:NAME -->`` and ``<!-- /tasks:NAME -->``; a test keeps
them current.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath

from utils.records import DATASETS, SETTINGS, SPLITS, TASKS, Dataset, prompt_set_names


def _layout_cell(dataset: Dataset, split: str) -> str:
    layout, source = dataset.layout(split), (dataset.train_source if split == "train" else dataset.test_source)
    if layout.degraded is None:
        where = f"`{layout.clean}/{layout.example}` " if layout.clean else ""
        return f"{where}clean images ({source})"
    clean = layout.partner(PurePosixPath(layout.example))
    return f"`{layout.degraded}/{layout.example}`, `{PurePosixPath(layout.clean) / clean}` ({source})"


def datasets_table() -> str:
    """The table of dataset folders: flag, default folder, layout, pairing rule."""
    rows = ["| flag | default under `--data_root` | layout | pairs by |", "|---|---|---|---|"]
    for split in SPLITS:
        for d in DATASETS.values():
            rows.append(f"| `--{d.flag(split)}` | `{d.default_folder(split)}/` | {_layout_cell(d, split)} "
                        f"| {d.layout(split).pairs_by} |")
    return "\n".join(rows)


def tasks_table() -> str:
    """The table of tasks: id, spellings, dataset folders, prompts, training repeats, published numbers."""
    settings = list(SETTINGS)
    sets = prompt_set_names()
    header = ["task", "id", "other names", "paper column", "dataset", *(f"prompt ({s})" for s in sets),
              *(f"{s} repeat" for s in settings), *(f"{s} paper PSNR / SSIM" for s in settings)]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in sorted(TASKS.values(), key=lambda t: t.de_id):
        cells = [f"`{t.name}`", str(t.de_id), ", ".join(f"`{a}`" for a in t.aliases) or "-", t.test_set,
                 f"`--{t.dataset.flag('train')}`, `--{t.dataset.flag('test')}`", *(t.prompts.get(s, "-") for s in sets),
                 *(str(t.repeats.get(s, "-")) for s in settings),
                 *(("{:.2f} / {:.3f}".format(*t.published[s])) if s in t.published else "-" for s in settings)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


README_TABLES: dict[str, Callable[[], str]] = {"datasets": datasets_table, "tasks": tasks_table}
"""Marker name -> generator: docs/datasets.md holds each table between ``<!-- tasks:NAME -->`` and
``<!-- /tasks:NAME -->``."""


def readme_with_tables(text: str) -> str:
    """``text`` (docs/datasets.md) with every marked table regenerated from the records."""
    for name, table in README_TABLES.items():
        pattern = re.compile(rf"(<!-- tasks:{name} -->\n)(?:.*?\n)?(<!-- /tasks:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"the page has no <!-- tasks:{name} --> ... <!-- /tasks:{name} --> block")
        text = pattern.sub(lambda m, table=table: m.group(1) + table() + "\n" + m.group(2), text)
    return text
