"""The degradation tasks of DFPIR: one record per task, one per dataset, one per setting.

This module is the public face of the records (docs/protocol.md sections 2-5): the record types and registries
(:mod:`utils.records`), the paper's own records, registered on import (:mod:`utils.paper`), and the
tables of docs/datasets.md (:mod:`utils.readme_tables`, ``python -m utils.tasks [--update-readme]``).

Flags (``options.py``), dataset folders and pairing (``data/layouts.py``), the prompt sets
(``net/prompts.py``), the demo's ``--degradation`` choices, the stand-in generator
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

import sys

import utils.paper  # noqa: F401  (registers the paper's records)
from utils.readme_tables import README_TABLES, datasets_table, main, readme_with_tables, tasks_table
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

if __name__ == "__main__":
    sys.exit(main())
