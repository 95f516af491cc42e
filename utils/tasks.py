"""The degradation tasks of DFPIR: one record per task, one per dataset, one per setting.

This module is the public face of the records (docs/protocol.md sections 2-5): the record types and registries
(:mod:`utils.records`), the paper's own records, registered on import (:mod:`utils.paper`), and the
tables of docs/datasets.md (:mod:`utils.readme_tables`, ``python -m utils.tasks [--update-readme]``).

Options (declared with ``utils/config.py``), dataset folders and pairing (``data/layouts.py``), the prompt sets
(``net/prompts/``), the demo's ``--degradation`` choices, the stand-in generator
(``data/sample.py``), the downloads of ``python -m data.prepare``, the data benchmark and the
tables of docs/datasets.md are all derived from the registries, read when they are used (never copied at import).

Adding a task: write its records (a :class:`Dataset` if it brings a new dataset, naming a stand-in
synthesis registered with ``data.synthesis.register_synthesis``, and a :class:`Task`, naming an
online degradation registered with ``data.online.register_online`` if the loaders synthesise it)
and register them with :func:`register_dataset` / :func:`register_task`; a new training mixture is
one :class:`Setting` (:func:`register_setting`). Then ``python -m utils.tasks --update-readme``.
See docs/extending.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import utils.paper  # noqa: F401  (registers the paper's records)
from utils.readme_tables import README_TABLES, datasets_table, readme_with_tables, tasks_table
from utils.records import (
    DATASETS,
    SETTINGS,
    SPLITS,
    TASK_BY_ID,
    TASKS,
    Dataset,
    Download,
    Layout,
    Online,
    PartnerRule,
    Setting,
    StandIn,
    Task,
    degradation_choices,
    find_task,
    folder_flags,
    haze_partner,
    prompt_set_names,
    prompts_of,
    rain_partner,
    register_dataset,
    register_setting,
    register_task,
    same_name,
)

__all__ = [
    "DATASETS", "README_TABLES", "SETTINGS", "SPLITS", "TASKS", "TASK_BY_ID", "Dataset", "Download", "Layout",
    "Online", "PartnerRule", "Setting", "StandIn", "Task", "datasets_table", "degradation_choices", "find_task",
    "folder_flags", "haze_partner", "main", "prompt_set_names", "prompts_of", "rain_partner", "readme_with_tables",
    "register_dataset", "register_setting", "register_task", "same_name", "tasks_table",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.tasks``: print the generated tables of docs/datasets.md, or rewrite them in place."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.tasks",
        description="Print the task and dataset tables of docs/datasets.md, derived from the records.",
    )
    parser.add_argument("--update-readme", metavar="PAGE", nargs="?", const="docs/datasets.md", default=None,
                        help="rewrite the marked tables of this page in place (default docs/datasets.md)")
    args = parser.parse_args(argv)
    if args.update_readme:
        path = Path(args.update_readme)
        path.write_text(readme_with_tables(path.read_text()))
        print(f"updated the task tables of {path}")
    else:
        for name, table in README_TABLES.items():
            print(f"<!-- tasks:{name} -->\n{table()}\n<!-- /tasks:{name} -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
