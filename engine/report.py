"""Results of an evaluation: results.json, and a table in the paper's layout beside the published numbers."""

from __future__ import annotations

import json
from pathlib import Path

from utils.tasks import SETTINGS, TASKS


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
    paper_cells, ours_cells, delta_cells = [], [], []
    paper_known = [t for t in tasks if t in published]
    for task in tasks:
        ours = results[task]
        ours_cells.append(_cell(ours["psnr"], ours["ssim"], 4))
        if task in published:
            p, s = published[task]
            paper_cells.append(_cell(p, s, 3))
            delta_cells.append(f"{ours['psnr'] - p:+.2f} / {ours['ssim'] - s:+.4f}")
        else:
            paper_cells.append("-")
            delta_cells.append("-")
    avg = results["average"]
    ours_cells.append(_cell(avg["psnr"], avg["ssim"], 4))
    if paper_known and len(paper_known) == len(tasks):
        if set(tasks) == set(SETTINGS[setting].test_tasks):
            p, s = published["average"]
        else:
            p = sum(published[t][0] for t in tasks) / len(tasks)
            s = sum(published[t][1] for t in tasks) / len(tasks)
        paper_cells.append(_cell(p, s, 3))
        delta_cells.append(f"{avg['psnr'] - p:+.2f} / {avg['ssim'] - s:+.4f}")
    else:
        paper_cells.append("-")
        delta_cells.append("-")
    rows = [header, ["-" * 3] * len(header), [f"DFPIR {setting} (paper)", *paper_cells],
            ["this run", *ours_cells], ["difference", *delta_cells]]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def image_counts(results: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{TASKS[t].test_set}: {int(v['n'])} images" for t, v in results.items() if t != "average")


def with_average(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-task results plus their "average" (mean PSNR and SSIM over the tasks)."""
    tasks = [v for t, v in results.items() if t != "average"]
    average = {m: sum(v[m] for v in tasks) / len(tasks) for m in ("psnr", "ssim")}
    return {**{t: v for t, v in results.items() if t != "average"}, "average": average}


def figure_section(figures: dict[str, str]) -> str:
    """Markdown embedding each task's comparison figure ({task: file name relative to results.md})."""
    if not figures:
        return ""
    shown = "\n\n".join(f"![{TASKS[t].test_set}: best, median and worst image]({name})" for t, name in figures.items())
    return f"\n### Best, median and worst image of each test set\n\n{shown}\n"


def write_results(output_dir: str | Path, results: dict[str, dict[str, float]], setting: str, title: str,
                  figures: dict[str, str] | None = None) -> str:
    """Write output_dir/results.json and output_dir/results.md (embedding ``figures``); return the markdown."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = f"## {title}\n\nPSNR (dB) / SSIM. {image_counts(results)}.\n\n{results_table(results, setting)}\n"
    markdown += figure_section(figures or {})
    (output_dir / "results.md").write_text(markdown)
    return markdown
