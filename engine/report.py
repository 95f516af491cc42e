"""Results of an evaluation: results.json, and a table in the paper's layout beside the published numbers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from engine.scoring import Results, average
from net.recognizer import setting_ids
from utils.outputs import atomic_write
from utils.tasks import SETTINGS, TASK_BY_ID, TASKS

_warned_non_finite: set[str] = set()
"""The metrics already warned about as non-finite in this process (each is warned about once)."""


def _cell(psnr: float, ssim: float, ssim_digits: int) -> str:
    return f"{psnr:.2f} / {ssim:.{ssim_digits}f}"


def results_table(results: dict[str, dict[str, float]], setting: str) -> str:
    """Markdown table: one column per test set (paper order) and the average; rows paper / measured / delta.

    The paper's average is its published one when every test set of the setting was run, else the
    mean of its published numbers over the test sets that were run.
    """
    published = SETTINGS[setting].published
    tasks = [t for t in results if t != "average"]
    header = ["", *(TASKS[t].test_set for t in tasks), "Average"]
    blind = "known" in results["average"]
    paper_cells, ours_cells, known_cells, delta_cells = [], [], [], []
    paper_known = [t for t in tasks if t in published]
    for task in tasks:
        ours = results[task]
        ours_cells.append(_cell(ours["psnr"], ours["ssim"], 4))
        if blind:
            known_cells.append(_cell(ours["known"]["psnr"], ours["known"]["ssim"], 4))
        if task in published:
            p, s = published[task]
            paper_cells.append(_cell(p, s, 3))
            delta_cells.append(f"{ours['psnr'] - p:+.2f} / {ours['ssim'] - s:+.4f}")
        else:
            paper_cells.append("-")
            delta_cells.append("-")
    avg = results["average"]
    ours_cells.append(_cell(avg["psnr"], avg["ssim"], 4))
    if blind:
        known_cells.append(_cell(avg["known"]["psnr"], avg["known"]["ssim"], 4))
    if paper_known and len(paper_known) == len(tasks):
        if set(tasks) == set(SETTINGS[setting].test_tasks) and "average" in published:
            p, s = published["average"]
        else:
            p = sum(published[t][0] for t in tasks) / len(tasks)
            s = sum(published[t][1] for t in tasks) / len(tasks)
        paper_cells.append(_cell(p, s, 3))
        delta_cells.append(f"{avg['psnr'] - p:+.2f} / {avg['ssim'] - s:+.4f}")
    else:
        paper_cells.append("-")
        delta_cells.append("-")
    ours_rows = [["this run, blind (recognised degradation)", *ours_cells],
                 ["this run, known degradation", *known_cells]] if blind else [["this run", *ours_cells]]
    rows = [header, ["-" * 3] * len(header), [f"DFPIR {setting} (paper)", *paper_cells], *ours_rows,
            ["difference" + (" (blind - paper)" if blind else ""), *delta_cells]]
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


def write_results(output_dir: str | Path, results: dict[str, dict[str, float]], setting: str, title: str,
                  figures: dict[str, str] | None = None) -> str:
    """Write output_dir/results.json (strict JSON, :func:`strict_json`) and output_dir/results.md (embedding
    ``figures``), each atomically (``utils.outputs.atomic_write``: WriteError if one cannot be written, the
    earlier file intact); return the markdown."""
    output_dir = Path(output_dir)
    atomic_write(output_dir / "results.json", strict_json(results))
    markdown = f"## {title}\n\nPSNR (dB) / SSIM. {image_counts(results)}.\n\n{results_table(results, setting)}\n"
    markdown += recognition_section(results, setting) + figure_section(figures or {})
    atomic_write(output_dir / "results.md", markdown)
    return markdown
