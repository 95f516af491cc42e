"""Every command-line entry point answers ``--help``, and a shared option has one default everywhere.

The entry points are those of docs/commands.md; each is run as the user runs it (``python -m MODULE``
or ``python SCRIPT``, through ``runpy`` in this process), so the ``__main__`` guards are exercised too.
"""

from __future__ import annotations

import importlib
import re
import runpy
import sys
import warnings
from pathlib import Path

import pytest

import options
from data.run_options import DataOptions, NameListsOption, PatchSizeOption, PreloadOption
from net.prompts import PromptOptions
from net.run_options import ModelOption, RecognizerOption
from utils.config import Config, default_of, fields_of
from utils.run_options import ChannelsLastOption, DeviceOption, NumWorkersOption, SeedOption, TilingOptions

ROOT = Path(__file__).resolve().parents[1]

SCRIPTS = ["train_3D_DFPIR.py", "train_5D_DFPIR.py", "test_3D_DFPIR.py", "test_5D_DFPIR.py", "train_recognizer.py",
           "demo.py", "app.py", "quickstart.py", "benchmarks/benchmark.py", "benchmarks/bench_data.py",
           "benchmarks/bench_recognizer.py", "benchmarks/clip_cuda_parity.py", "benchmarks/gpu_report.py",
           "benchmarks/convergence.py"]
MODULES = ["data.prepare", "data.sample", "net.hub", "net.prompts", "engine.curves", "utils.tasks"]
PARSERS = {  # command -> its parser, for the commands whose parser a function builds
    "train": lambda: options.build_train_parser("3D"),
    "test": lambda: options.build_test_parser("3D"),
    "recognizer": options.build_recognizer_train_parser,
    "demo": lambda: importlib.import_module("demo").build_parser(),
    "quickstart": lambda: importlib.import_module("quickstart").build_parser(),
    "data.prepare": lambda: importlib.import_module("data.prepare").build_parser(),
    "data.sample": lambda: importlib.import_module("data.sample").build_parser(),
    "net.hub": lambda: importlib.import_module("net.hub").build_parser(),
    "net.prompts": lambda: importlib.import_module("net.prompts").build_parser(),
    "bench_data": lambda: importlib.import_module("benchmarks.bench_data").build_parser(),
}


def _help_of(run, argv0: str, monkeypatch, capsys) -> str:
    """The ``--help`` text of an entry point, which must exit with status 0."""
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before (by another test)
        run()
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_answers_help(script, monkeypatch, capsys):
    if script == "app.py":
        pytest.importorskip("gradio")
    monkeypatch.syspath_prepend(str(ROOT))
    text = _help_of(lambda: runpy.run_path(str(ROOT / script), run_name="__main__"), script, monkeypatch, capsys)
    assert text.startswith("usage:") and "--help" in text


@pytest.mark.parametrize("module", MODULES)
def test_every_module_command_answers_help(module, monkeypatch, capsys):
    text = _help_of(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True), module, monkeypatch, capsys)
    assert text.startswith("usage:") and "--help" in text


def test_every_entry_point_is_listed_in_the_commands_page():
    page = (ROOT / "docs" / "commands.md").read_text()
    for script in SCRIPTS:
        assert f"python {script}" in page, script
    for module in MODULES:
        assert f"python -m {module}" in page, module
    assert "docs/commands.md" in (ROOT / "README.md").read_text()


def test_library_modules_have_no_main_guard_unless_they_are_commands():
    """A module with ``if __name__ == "__main__"`` is a command of docs/commands.md."""
    commands = {f"{m.replace('.', '/')}.py" for m in MODULES}
    for path in [*ROOT.glob("utils/**/*.py"), *ROOT.glob("net/**/*.py"), *ROOT.glob("data/**/*.py"),
                 *ROOT.glob("engine/**/*.py"), ROOT / "options.py"]:
        if re.search(r"^if __name__ == .__main__.:", path.read_text(), re.M):
            assert str(path.relative_to(ROOT)) in commands, f"{path} has a main guard but is not a listed command"


def _default(parser, dest: str):
    return next(a.default for a in parser._actions if a.dest == dest)


def _declared(cls: type[Config], name: str) -> tuple:
    field, option, _ = next(entry for entry in fields_of(cls) if entry[0].name == name)
    return default_of(cls, name), option.help if isinstance(option.help, str) else option.help({"setting": "3D"})


@pytest.mark.parametrize(("cls", "name", "commands"), [
    (PatchSizeOption, "patch_size", ["train", "recognizer", "data.prepare", "bench_data"]),
    (NumWorkersOption, "num_workers", ["train", "test", "recognizer", "data.prepare"]),
    (SeedOption, "seed", ["train", "recognizer", "data.sample"]),
    (PreloadOption, "preload_gb", ["train", "recognizer"]),
    (DeviceOption, "device", ["train", "test", "recognizer", "demo", "quickstart"]),
    (PromptOptions, "prompt_set", ["train", "test", "demo", "net.hub", "net.prompts"]),
    (PromptOptions, "prompt_backend", ["train", "test", "demo", "net.hub", "net.prompts"]),
    (TilingOptions, "tile_overlap", ["test", "demo"]),
    (DataOptions, "data_root", ["train", "test", "recognizer"]),
    (NameListsOption, "data_file_dir", ["train", "recognizer", "data.prepare"]),
    (ChannelsLastOption, "channels_last", ["train", "test"]),
    (TilingOptions, "tile", ["test", "demo"]),
    (RecognizerOption, "recognizer", ["test", "demo"]),
    (ModelOption, "model", ["train", "test", "demo", "net.hub"]),
    (PromptOptions, "prompt_embeddings", ["train", "test", "demo", "net.hub"]),
])
def test_a_shared_option_has_its_one_default_and_help_in_every_command(cls, name, commands):
    default, help_text = _declared(cls, name)
    for command in commands:
        parser = PARSERS[command]()
        assert _default(parser, name) == default, command
        assert next(a.help for a in parser._actions if a.dest == name) == help_text, command


def test_the_paper_patch_size_is_what_training_and_the_recogniser_get():
    assert options.build_train_parser("5D").parse_args([]).patch_size == 128
    assert options.build_recognizer_train_parser().parse_args(["--setting", "3D"]).patch_size == 128


def test_the_name_lists_default_is_the_shipped_lists_in_every_command():
    from data.layouts import AUTHORS_NAME_LISTS

    for command in ("train", "recognizer", "data.prepare"):
        assert _default(PARSERS[command](), "data_file_dir") == str(AUTHORS_NAME_LISTS), command


def test_each_commands_values_are_checked_by_their_own_declarations():
    """A rule lives with its field (utils/config.py): a flag out of range is one line naming the flag,
    whichever command has it; what the network asks (tile, patch size) is checked with the network."""
    from engine.preflight import network_problems
    from utils.config import problems, read_command_line, resolve

    def resolved(cls, parser, argv, context, setting=None):
        return resolve(cls, read_command_line(parser, cls, argv, context), None, setting, context)

    train = resolved(options.TrainConfig, options.build_train_parser("3D"), ["--batch_size", "0"], {"setting": "3D"},
                     options.train_setting_defaults("3D"))
    assert problems(train) == ["--batch_size 0: must be at least 1 (images per optimizer step and process)"]
    test = resolved(options.EvalConfig, options.build_test_parser("3D"), ["--ckpt", "x"],
                    {"setting": "3D", "split": "test"}, options.eval_setting_defaults("3D"))
    assert problems(test) == [] and network_problems(test, None) == []
    demo_module = importlib.import_module("demo")
    demo = resolved(demo_module.DemoConfig, PARSERS["demo"](),
                    ["--ckpt", "x", "--degradation", "rain", "--input", "x", "--tile", "12"], {})
    assert network_problems(demo, None) == ["--tile_overlap 32: must be at least 0 and smaller than --tile 12"]
