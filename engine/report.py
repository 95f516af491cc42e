"""Results of an evaluation: results.json, and a table in the paper's layout beside the published numbers.

One report path: an evaluation of one checkpoint is a comparison of one. Every measured row is shown
beside the published row of its own network (``utils.records.Setting.published_for``), or says that
network is "not published" in the setting; networks are named by their registered display name
(``net.registry.display_name``). Only the names of a lone checkpoint's rows ("this run",
"difference") and its results.json layout (``engine.scoring.Results``, no ``checkpoints`` key)
differ from those of several.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.scoring import Results, average
from net.recognizer import setting_ids
from net.registry import display_name
from utils.outputs import atomic_write
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS

PaperRow = list[tuple[float, float] | None]
"""A published row over a run's tasks and their average: (PSNR, SSIM) per column, None where not published."""

_warned_non_finite: set[str] = set()
"""The metrics already warned about as non-finite in this process (each is warned about once)."""


def _cell(psnr: float, ssim: float, ssim_digits: int) -> str:
    return f"{psnr:.2f} / {ssim:.{ssim_digits}f}"


def paper_values(published: dict[str, tuple[float, float]], tasks: list[str], setting: str) -> PaperRow:
    """A published row over ``tasks`` and their average: (PSNR, SSIM) per task, None where not published.

    The average is the published one when every test set of the setting was run, else the mean of
    the published numbers over the test sets that were run (None unless all of them are published).
    """
    values = [published.get(t) for t in tasks]
    if not tasks or any(v is None for v in values):
        return [*values, None]
    if set(tasks) == set(SETTINGS[setting].test_tasks) and "average" in published:
        return [*values, published["average"]]
    return [*values, (sum(v[0] for v in values) / len(tasks), sum(v[1] for v in values) / len(tasks))]


def _columns(results: Results, tasks: list[str]) -> list[dict | None]:
    """The entries of ``results`` under the columns ``tasks`` and the average; None where a task was not
    run yet, and for the average then (an interrupted checkpoint's row)."""
    entries = [results.get(t) for t in tasks]
    return [*entries, None if None in entries else results["average"]]


def _measured_cells(results: Results, known: bool, tasks: list[str]) -> list[str]:
    """The cells of one measured row under the table's columns ``tasks``: each task, then the average
    (``known``: the known-degradation scores), '-' where a task has no result; an entry's ``note`` (e.g.
    "not trained on this task", engine.evaluate) follows its cell."""
    return ["-" if e is None else (_cell(e["known"]["psnr"], e["known"]["ssim"], 4) if known
            else _cell(e["psnr"], e["ssim"], 4)) + (f" ({e['note']})" if "note" in e else "")
            for e in _columns(results, tasks)]


def _paper_cells(paper: PaperRow) -> list[str]:
    return ["-" if v is None else _cell(v[0], v[1], 3) for v in paper]


def _delta_cells(results: Results, paper: PaperRow, tasks: list[str]) -> list[str]:
    return ["-" if v is None or e is None else f"{e['psnr'] - v[0]:+.2f} / {e['ssim'] - v[1]:+.4f}"
            for e, v in zip(_columns(results, tasks), paper, strict=True)]


def _header(tasks: list[str]) -> list[list[str]]:
    header = ["", *(TASKS[t].test_set for t in tasks), "Average"]
    return [header, ["-" * 3] * len(header)]


@dataclass(frozen=True)
class CheckpointResults:
    """The results of one checkpoint of an evaluation (one row of its table; a lone ``--ckpt`` is a comparison of one).

    label: its row's name (``--label``, else the file name); path: the checkpoint as given;
    architecture: its network's registered architecture (``net/registry.py``), which selects the
    published row it is compared with; network: a description of the network (``NetworkSpec.describe``).
    """

    label: str
    path: str
    architecture: str
    network: str
    results: Results


def published_rows(entries: list[CheckpointResults], setting: str, tasks: list[str]) -> dict[str, PaperRow | None]:
    """{architecture: its published row over ``tasks`` and their average (:func:`paper_values`), or None
    when not published in ``setting``}, for each architecture among ``entries``, in their order."""
    rows: dict[str, PaperRow | None] = {}
    for entry in entries:
        if entry.architecture not in rows:
            published = SETTINGS[setting].published_for(entry.architecture)
            rows[entry.architecture] = None if published is None else paper_values(published, tasks, setting)
    return rows


def _row_names(entry: CheckpointResults, lone: bool) -> tuple[str, str]:
    """The names of a checkpoint's measured row and of its difference row: a lone checkpoint's are
    "this run" and "difference" (the paper's layout), each of several is named by its label."""
    blind = "known" in entry.results["average"]
    if lone:
        return "this run", "difference" + (" (blind - paper)" if blind else "")
    return entry.label, f"{entry.label} - {display_name(entry.architecture)} paper"


def comparison_table(entries: list[CheckpointResults], setting: str, tasks: list[str]) -> str:
    """Markdown table of the checkpoints of one evaluation (one or several) scored on the same inputs,
    one column per task of ``tasks`` and the average: the published row of each network present ("not
    published" where the setting has none), a row per checkpoint (two for a blind evaluation: blind and
    known degradation; '-' for a task not run yet), then each checkpoint's difference from its own
    network's published row (none where not published). A lone checkpoint's rows are named "this run"
    and "difference" (:func:`_row_names`)."""
    paper = published_rows(entries, setting, tasks)
    lone = len(entries) == 1
    rows = _header(tasks)
    for architecture, values in paper.items():
        name = f"{display_name(architecture)} {setting} ({SETTINGS[setting].published_source(architecture)})"
        rows.append([name + ": not published", *["-"] * (len(rows[0]) - 1)] if values is None
                    else [name, *_paper_cells(values)])
    for entry in entries:
        measured, _ = _row_names(entry, lone)
        if "known" in entry.results["average"]:
            rows += [[f"{measured}, blind (recognised degradation)", *_measured_cells(entry.results, False, tasks)],
                     [f"{measured}, known degradation", *_measured_cells(entry.results, True, tasks)]]
        else:
            rows.append([measured, *_measured_cells(entry.results, False, tasks)])
    for entry in entries:
        if paper[entry.architecture] is not None:
            rows.append([_row_names(entry, lone)[1], *_delta_cells(entry.results, paper[entry.architecture], tasks)])
    return _markdown(rows)


def _markdown(rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def confusion_table(counts: dict[str, dict[int, int]], de_ids: list[int]) -> str:
    """Markdown confusion matrix: one row per test set (its true task), one column per predicted degradation id."""
    header = ["true \\ predicted", *(f"{TASK_BY_ID[i].name} ({i})" for i in de_ids), "accuracy"]
    rows = [header, ["---"] * len(header)]
    for task, predicted in counts.items():
        total = sum(predicted.values())
        accuracy = predicted.get(TASKS[task].de_id, 0) / total if total else float("nan")
        rows.append([task, *(str(predicted.get(i, 0)) for i in de_ids), f"{accuracy:.1%}"])
    return _markdown(rows)


def recognition_section(results: Results, setting: str) -> str:
    """The blind evaluation's recognition accuracy and confusion matrix ('' when it was not blind)."""
    if "recognition_accuracy" not in results.get("average", {}):
        return ""
    counts = {t: {int(i): n for i, n in v["predicted_ids"].items()} for t, v in results.items() if t != "average"}
    accuracy = results["average"]["recognition_accuracy"]
    total = sum(v["n"] for t, v in results.items() if t != "average")
    return (f"\nDegradation recognition: {accuracy:.1%} of {total} test images. Rows: test set; columns: predicted "
            f"degradation (id); the blind row restores each image with its predicted degradation's prompt, the known "
            f"row with its test set's.\n\n{confusion_table(counts, setting_ids(setting))}\n")


def image_counts(results: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{TASKS[t].test_set}: {int(v['n'])} images" for t, v in results.items() if t != "average")


def with_average(results: Results) -> Results:
    """Per-task results plus their "average" (``engine.scoring.average``)."""
    tasks = {t: v for t, v in results.items() if t != "average"}
    return {**tasks, "average": average(list(tasks.values()))}


def figure_section(figures: dict[str, str]) -> str:
    """Markdown embedding each task's comparison figure ({task: file name relative to results.md})."""
    if not figures:
        return ""
    shown = "\n\n".join(f"![{TASKS[t].test_set}: best, median and worst image]({name})" for t, name in figures.items())
    return f"\n### Best, median and worst image of each test set\n\n{shown}\n"


def _finite_or_none(value, key: str, non_finite: dict[str, float]):
    """``value`` with every NaN or infinite float replaced by None; each replaced one is added to ``non_finite``
    under its dotted key (e.g. 'derain.psnr')."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v, f"{key}.{k}" if key else str(k), non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v, f"{key}[{i}]", non_finite) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        non_finite[key] = value
        return None
    return value


def strict_json(results: dict) -> str:
    """``results`` as strict JSON (no NaN/Infinity tokens): a non-finite metric becomes null, with a warning
    on stderr the first time that metric is seen in this process."""
    non_finite: dict[str, float] = {}
    text = json.dumps(_finite_or_none(results, "", non_finite), indent=2, allow_nan=False) + "\n"
    new = {key: value for key, value in non_finite.items() if key not in _warned_non_finite}
    if new:
        _warned_non_finite.update(new)
        listed = ", ".join(f"{key} = {value}" for key, value in new.items())
        print(f"warning: non-finite metrics written as null in results.json: {listed}", file=sys.stderr)
    return text


def comparison_json(entries: list[CheckpointResults], setting: str, tasks: list[str]) -> dict:
    """results.json of several checkpoints (docs/evaluation.md)::

        {"setting": "3D",
         "checkpoints": {label: {"checkpoint": path, "architecture": "dfpir", "network": "paper (dfpir)",
                                 "results": {task: {"psnr", "ssim", "n"}, ..., "average": {...}}}, ...},
         "paper": {architecture: {task: {"psnr", "ssim"}, ..., "average": {...}} or null (not published)}}

    Each ``results`` has the layout of a single checkpoint's results.json (``engine.scoring.Results``);
    a paper row holds the published numbers of ``tasks`` (the run's) and the average the table shows
    (:func:`paper_values`).
    """
    columns = [*tasks, "average"]
    paper = {architecture: None if values is None else
             {t: {"psnr": v[0], "ssim": v[1]} for t, v in zip(columns, values, strict=True) if v is not None}
             for architecture, values in published_rows(entries, setting, tasks).items()}
    checkpoints = {e.label: {"checkpoint": e.path, "architecture": e.architecture, "network": e.network,
                             "results": e.results} for e in entries}
    return {"setting": setting, "checkpoints": checkpoints, "paper": paper}


def write_results(output_dir: str | Path, entries: list[CheckpointResults], setting: str, tasks: list[str],
                  title: str, figures: dict[str, str] | None = None) -> str:
    """results.json and results.md of an evaluation of one or several checkpoints, each written atomically
    (``utils.outputs.atomic_write``: WriteError if one cannot be written, the earlier file intact);
    return the markdown.

    results.json: a lone checkpoint's results (``engine.scoring.Results``, strict JSON: :func:`strict_json`),
    several checkpoints' :func:`comparison_json`. results.md: :func:`comparison_table`, the recognition
    section of each blind checkpoint and ``figures`` ({task: figure file}). ``tasks``: the run's tasks
    (the table's columns).
    """
    lone = len(entries) == 1
    same_inputs = "" if lone else ", every checkpoint on the same inputs"
    markdown = (f"## {title}\n\nPSNR (dB) / SSIM{same_inputs}. "
                f"{image_counts(entries[0].results)}.\n\n{comparison_table(entries, setting, tasks)}\n")
    for entry in entries:
        section = recognition_section(entry.results, setting)
        markdown += section if lone else f"\n### {entry.label}\n{section}" if section else ""
    markdown += figure_section(figures or {})
    return _write(output_dir, entries[0].results if lone else comparison_json(entries, setting, tasks), markdown)


def _write(output_dir: str | Path, results: dict, markdown: str) -> str:
    """output_dir/results.json and results.md, each atomically; returns ``markdown``."""
    output_dir = Path(output_dir)
    atomic_write(output_dir / "results.json", strict_json(results))
    atomic_write(output_dir / "results.md", markdown)
    return markdown
