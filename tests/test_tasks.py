"""utils/tasks.py: the task, dataset and setting records, and what is derived from them.

The expected values are written out here from docs/protocol.md (sections 2-5), not read from the records.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from data.evalsets import legacy_sigmas
from net.prompts import prompt_list
from utils.tasks import (
    SETTINGS,
    TASKS,
    Setting,
    degradation_choices,
    find_task,
    folder_flags,
    readme_with_tables,
    register_setting,
)

ROOT = Path(__file__).resolve().parents[1]
TABLES_PAGE = ROOT / "docs" / "datasets.md"


def test_every_spelling_of_a_task_finds_it():
    for spelling in ("denoise_15", "noise15", "CBSD68 s15"):
        assert find_task(spelling) is TASKS["denoise_15"]
    assert find_task("SOTS").name == "dehaze" and find_task("blur").name == "deblur"
    with pytest.raises(ValueError, match="unknown task 'snow'"):
        find_task("snow")


def test_prompt_sets_indexed_by_degradation_id():
    assert prompt_list("detailed") == [
        "Gaussian noise with a standard deviation of 15",
        "Gaussian noise with a standard deviation of 25",
        "Gaussian noise with a standard deviation of 50",
        "Rain degradation with rain lines",
        "Hazy degradation with normal haze",
        "Blur degradation with motion blur",
        "Lowlight degradation",
    ]
    assert prompt_list("simple") == ["Noise", "Noise", "Noise", "Rain", "Haze"]
    assert SETTINGS["3D"].prompt_sets() == ["detailed", "simple"] and SETTINGS["5D"].prompt_sets() == ["detailed"]


def test_settings_derive_the_paper_protocol():
    assert SETTINGS["3D"].train_repeats == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120,
                                           "dehaze": 1}
    assert SETTINGS["5D"].train_repeats == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 80,
                                           "dehaze": 1, "deblur": 30, "lowlight": 60}
    assert SETTINGS["5D"].published == {"dehaze": (31.64, 0.979), "derain": (37.62, 0.978),
                                        "denoise_25": (31.29, 0.889), "deblur": (28.82, 0.873),
                                        "lowlight": (23.82, 0.843), "average": (30.64, 0.913)}
    assert SETTINGS["3D"].published["average"] == (32.88, 0.919) and SETTINGS["3D"].published["denoise_50"][0] == 28.25


def test_flags_and_demo_choices():
    assert folder_flags("train") == ["denoise_dir", "derain_dir", "dehaze_dir", "deblur_dir", "lowlight_dir"]
    assert folder_flags("test") == ["denoise_path", "derain_path", "dehaze_path", "deblur_path", "lowlight_path"]
    assert list(degradation_choices()) == ["noise15", "noise25", "noise50", "rain", "haze", "blur", "lowlight"]


def test_the_readme_tables_are_the_records():
    text = TABLES_PAGE.read_text()
    assert readme_with_tables(text) == text, "stale tables: run python -m utils.tasks --update-readme"


PROJECT_PACKAGES = ("data", "net", "engine", "benchmarks", "options", "demo", "app")


def test_the_records_import_nothing_of_the_project():
    """utils/ is the lowest floor: no module of it imports data/, net/, engine/ or a script, not even
    inside a function, and importing the records loads neither them nor scipy."""
    for module in (ROOT / "utils").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            upward = [n for n in names if n.split(".")[0] in PROJECT_PACKAGES]
            assert not upward, f"{module.name} imports {upward}"
    code = ("import sys, utils.tasks; print(sorted({m.split('.')[0] for m in sys.modules} & "
            f"{set(PROJECT_PACKAGES) | {'scipy'}!r}))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_a_setting_without_the_authors_noise_order_refuses_legacy_noise():
    register_setting(Setting("3D_copy", SETTINGS["3D"].test_tasks, 2000, SETTINGS["3D"].train_repeats))
    try:
        assert legacy_sigmas("3D") == (15, 25, 50) and legacy_sigmas("5D") == (25,)
        with pytest.raises(ValueError, match="no 3D_copy test script"):
            legacy_sigmas("3D_copy")
    finally:
        del SETTINGS["3D_copy"]
