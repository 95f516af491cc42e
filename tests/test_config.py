"""Run configurations (utils/config.py): one declaration per option, one merge, config files that
reproduce a run, refused like flags when wrong."""

from __future__ import annotations

import ast
import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import options
from engine.evaluate import main as evaluate_main
from engine.train import main as train_main
from net.registry import create_model
from utils.config import Config, default_of, fields_of, read_command_line, resolve

ROOT = Path(__file__).resolve().parents[1]

COMMAND_MODULES = ["options", "demo", "app", "data.prepare", "net.hub", "net.prompts", "data.sample", "quickstart",
                   "benchmarks.bench_data", "benchmarks.convergence", "engine.inference"]


def _tiny_train(data_root: Path, ckpt_dir: Path, tiny_train_args, *extra: str) -> list[str]:
    return ["--data_root", str(data_root), "--ckpt_dir", str(ckpt_dir), *tiny_train_args, "--de_type", "dehaze",
            "--val_every", "0", "--max_steps", "2", *extra]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


# ----------------------------------------------------------------------------- the merge
def test_each_value_comes_from_the_first_layer_that_has_one():
    """command line > --config file > the network's recipe > the setting > the field's default."""
    from utils.config import Given

    given = Given(flags={"lr": 0.5}, file={"lr": 0.25, "batch_size": 3, "seed": 7})
    config = resolve(options.TrainConfig, given, {"lr": 1e-4, "batch_size": 5, "epochs": 80, "val_every": None},
                     options.train_setting_defaults("3D"), {"setting": "3D"})
    assert (config.lr, config.batch_size, config.seed, config.epochs, config.val_every, config.patch_size) == \
        (0.5, 3, 7, 80, 2000, 128)
    assert [config.source(n) for n in ("lr", "batch_size", "epochs", "val_every", "patch_size")] == \
        ["flag", "config file", "recipe", "setting", "default"]


# ----------------------------------------------------------------------------- round trips
def test_a_training_rerun_from_its_config_yaml_gives_bit_identical_weights(data_root, tmp_path, tiny_train_args,
                                                                          one_thread):
    first = tmp_path / "first"
    assert train_main("3D", _tiny_train(data_root, first, tiny_train_args, "--lr", "3e-4")) == 0
    saved = first / "config.yaml"
    assert yaml.safe_load(saved.read_text())["lr"] == 3e-4
    record = torch.load(first / "last.ckpt", map_location="cpu", weights_only=True)["dfpir_run"]
    assert record["config"] == yaml.safe_load(saved.read_text()) and record["config_sources"]["lr"] == "flag"

    again = tmp_path / "again"
    assert train_main("3D", ["--config", str(saved), "--ckpt_dir", str(again)]) == 0
    one, two = _weights(first / "last.ckpt"), _weights(again / "last.ckpt")
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    rerun = (again / "config.yaml").read_text()
    assert "lr: 0.0003  # config file" in rerun and f"ckpt_dir: {again}  # flag" in rerun


def test_an_evaluation_rerun_from_its_config_yaml_gives_identical_results(data_root, trained_run, tmp_path):
    first = tmp_path / "first"
    argv = ["--data_root", str(data_root), "--ckpt", str(trained_run / "last.ckpt"), "--output_path", str(first),
            "--device", "cpu", "--num_workers", "0", "--prompt_backend", "offline", "--tasks", "dehaze",
            "--no_save_images"]
    assert evaluate_main("3D", argv) == 0
    again = tmp_path / "again"
    assert evaluate_main("3D", ["--config", str(first / "config.yaml"), "--output_path", str(again)]) == 0
    assert json.loads((first / "results.json").read_text()) == json.loads((again / "results.json").read_text())
    assert evaluate_main("3D", argv) == 2  # config.yaml is an earlier run's output: refused without --overwrite


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("text", "message"), [
    ("lr: 0.001\nlearning_rate: 0.1\n", "key 'learning_rate'"),
    ("lr: fast\n", "key lr: must be a number, not 'fast'"),
    ("batch_size: 0\n", "key batch_size = 0: must be at least 1"),
    ("de_type: [dehaze, sharpen]\n", "key de_type = dehaze sharpen: sharpen is not one of"),
    ("setting: 5D\n", "setting 5D, but this command runs setting 3D"),
    ("- lr\n", "must be a mapping of option names to values"),
], ids=["unknown_key", "wrong_type", "out_of_range", "not_a_choice", "other_setting", "not_a_mapping"])
def test_a_config_file_with_a_wrong_value_is_refused_like_a_flag(tmp_path, capsys, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    assert train_main("3D", ["--config", str(config), "--ckpt_dir", str(tmp_path / "run"),
                             "--data_root", str(tmp_path / "no_data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(config) in err and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_missing_config_file_is_refused(tmp_path, capsys):
    assert train_main("3D", ["--config", str(tmp_path / "none.yaml"), "--ckpt_dir", str(tmp_path / "run")]) == 2
    assert "--config" in capsys.readouterr().err and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- --print_config
def test_print_config_shows_every_value_with_its_source_and_exits(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 3\n")
    assert train_main("3D", ["--config", str(config), "--batch_size", "2", "--print_config",
                             "--ckpt_dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "batch_size: 2  # flag" in out and "seed: 3  # config file" in out and "lr: 0.0001  # recipe" in out
    assert "val_every: 2000  # setting" in out and "patch_size: 128  # default" in out
    assert yaml.safe_load(out)["epochs"] == 80 and not (tmp_path / "run").exists()
    assert train_main("3D", ["--print_config"]) == 0
    assert "ckpt_dir: checkpoints/DFPIR_3D  # setting" in capsys.readouterr().out  # named after the network


def test_the_default_folders_are_named_after_the_network(capsys):
    assert train_main("5D", ["--model", "promptir_tiny", "--print_config"]) == 0
    assert "ckpt_dir: checkpoints/PromptIR_5D  # setting" in capsys.readouterr().out


def test_print_config_of_the_test_script(trained_run, tmp_path, capsys):
    assert evaluate_main("5D", ["--ckpt", str(trained_run / "last.ckpt"), "--tile", "64", "--print_config",
                                "--allow_untrained_tasks"]) == 0
    out = capsys.readouterr().out
    assert "tile: 64  # flag" in out and "output_path: outputs/DFPIR_5D  # setting" in out
    assert yaml.safe_load(out)["tasks"] == list(options.SETTINGS["5D"].test_tasks)
    assert "tasks:  # setting" in out and "tile_overlap: 32  # default" in out


def test_a_comparison_of_several_networks_is_named_after_each_of_them(tmp_path, capsys):
    files = {name: tmp_path / f"{name}.pt" for name in ("tiny", "promptir_tiny")}
    for name, path in files.items():
        torch.save(create_model(name).state_dict(), path)
    argv = ["--ckpt", str(files["tiny"]), "--ckpt", str(files["promptir_tiny"]), "--ckpt", str(files["tiny"]),
            "--label", "a", "--label", "b", "--label", "c", "--print_config"]
    assert evaluate_main("3D", argv) == 0
    assert "output_path: outputs/DFPIR_vs_PromptIR_3D  # setting" in capsys.readouterr().out


def test_print_config_refuses_a_value_out_of_range(capsys):
    assert train_main("3D", ["--lr", "-1", "--print_config"]) == 2
    assert "--lr -1.0: must be a finite learning rate >= 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- one declaration per option
def _config_classes() -> list[type[Config]]:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    found, stack = [], [Config]
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack += cls.__subclasses__()
    return found


def _declared_flags() -> dict[str, list[str]]:
    """flag -> the configuration classes whose own fields declare it (inherited fields count once, at home)."""
    declared: dict[str, list[str]] = {}
    for cls in _config_classes():
        own = cls.__dict__.get("__annotations__", {})
        for field, option, _ in fields_of(cls):
            if field.name in own:
                for flag in option.flags:
                    declared.setdefault(flag, []).append(cls.__qualname__)
    return declared


DISTINCT_OPTIONS_OF_ONE_NAME = {
    # flag: the commands that each have their own option of this name (another default, range or meaning)
    # DFPIR's recipe (Adam 1e-4) / the recogniser's AdamW 2e-3, > 0 / the convergence benchmark's constant rate
    "--lr": {"TrainConfig", "RecognizerConfig", "ConvergenceConfig"},
    # the recipe's, >= 1 / 32 task-balanced, >= 2 / the convergence benchmark's 4
    "--batch_size": {"TrainConfig", "RecognizerConfig", "ConvergenceConfig"},
    "--model": {"ModelOption", "ConvergenceConfig"},  # the run's network / the networks the benchmark trains
    "--setting": {"RecognizerConfig", "ConvergenceConfig"},  # required / the benchmark's mixture, default 3D
    "--de_type": {"TrainConfig", "RecognizerConfig"},  # the setting's tasks / any task, default every one
    "--val_tasks": {"TrainConfig", "RecognizerConfig"},  # validation sets / accuracy sets or 'none'
    "--max_steps": {"TrainConfig", "RecognizerConfig"},  # -1 (no limit) / 400
    "--out": {"PrepareConfig", "HubConfig"},  # a dataset root / a Hub folder
    "--output_dir": {"DemoConfig", "ConvergenceConfig"},  # restored images / the benchmark's table and figure
}


def test_every_option_is_declared_once():
    """A flag is one field of one configuration class (shared options are mixins, inherited), except the
    listed options that are distinct per command; an option re-declared in a second class fails here."""
    repeated = {flag: set(classes) for flag, classes in _declared_flags().items() if len(classes) > 1}
    # One declaration each, a function: net.run_options.checkpoint_option (required, repeatable or with a
    # fallback) and utils.run_options.overwrite_option (each command says what it replaces).
    for flag in ("--ckpt", "--pretrained_1", "--overwrite"):
        repeated.pop(flag, None)
    assert repeated == DISTINCT_OPTIONS_OF_ONE_NAME


def _source_files() -> list[Path]:
    """The package and the commands (benchmarks/ are measuring tools with options of their own)."""
    folders = ("utils", "net", "data", "engine")
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")] + sorted(ROOT.glob("*.py"))


def _declared_defaults() -> dict[str, list]:
    """flag -> the defaults of the fields that declare it."""
    found: dict[str, list] = {}
    for cls in _config_classes():
        own = cls.__dict__.get("__annotations__", {})
        for field, option, _ in fields_of(cls):
            if field.name in own:
                for flag in option.flags:
                    found.setdefault(flag, []).append(default_of(cls, field.name))
    return found


def test_no_declared_option_is_declared_again_outside_its_field():
    """An option's default and range live in its one declaration: no flag of a field is written in a
    second ``opt`` call (the listed distinct options aside), no ``set_defaults`` sets a declared option,
    and a parser built by hand that has a flag of a declared option's name takes it with
    ``utils.config.add_option``: an ``add_argument`` of that flag is allowed only for another option of
    the same name (required, or with another default, e.g. ``python -m net.prompts --device``: CLIP's)."""
    declared = _declared_defaults()
    names = {flag.lstrip("-") for flag in declared}
    offences, declarations = [], {}
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            keywords = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if called == "add_argument":
                for flag in (s for s in strings if s in declared):
                    if isinstance(keywords.get("required"), ast.Constant) and keywords["required"].value:
                        continue
                    default = keywords.get("default", ast.Constant(False if isinstance(
                        keywords.get("action"), ast.Constant) and keywords["action"].value == "store_true" else None))
                    value = default.value if isinstance(default, ast.Constant) else object()
                    if value in declared[flag]:
                        offences.append(f"{where}: add_argument({flag!r}, default={value!r}) copies the declared "
                                        "option; use utils.config.add_option")
            elif called == "opt":
                for flag in strings:
                    declarations.setdefault(flag, []).append(where)
            elif called == "set_defaults":
                offences += [f"{where}: set_defaults({k.arg}=...)" for k in node.keywords if k.arg in names
                             and k.arg not in ("model",)]  # quickstart passes DEFAULT_MODEL on to training
    offences += [f"{flag} declared at {', '.join(places)}" for flag, places in declarations.items()
                 if len(places) > 1 and flag not in DISTINCT_OPTIONS_OF_ONE_NAME]
    assert offences == []


def test_the_recipe_defaulted_options_have_no_default_of_their_own():
    """--lr, --batch_size ... default to the network's recipe (net/recipe.py), never to a literal here."""
    from net.recipe import DEFAULTED_OPTIONS

    defaults = {field.name: field.default for field, _, _ in fields_of(options.TrainConfig)}
    assert {name: defaults[name] for name in DEFAULTED_OPTIONS} == dict.fromkeys(DEFAULTED_OPTIONS)


def test_the_parsers_are_generated_from_the_declarations():
    given = read_command_line(options.build_test_parser("3D"), options.EvalConfig,
                              ["--pretrained_1", "a.ckpt", "--ckpt", "b.ckpt", "--label", "a", "--label", "b"],
                              {"setting": "3D", "split": "test"})
    assert given.flags == {"ckpt": ["a.ckpt", "b.ckpt"], "label": ["a", "b"]}
    parser = options.build_train_parser("3D")
    assert parser.parse_args(["--no-select_best_on_test"]).select_best_on_test is False
    assert "checkpoints/<network>_3D" in parser.format_help().replace("\n", " ").replace("  ", " ") or \
        "checkpoints/<network>_3D" in " ".join(parser.format_help().split())


def test_a_copied_run_folder_keeps_working(trained_run, tmp_path):
    """A config.yaml is plain YAML: copied with its run and edited by hand, it still reads."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    text = (run / "config.yaml").read_text().replace("max_steps: 2", "max_steps: 4")
    (run / "edited.yaml").write_text(text)
    given = read_command_line(options.build_train_parser("3D"), options.TrainConfig,
                              ["--config", str(run / "edited.yaml")], {"setting": "3D"})
    assert given.problems == [] and given.file["max_steps"] == 4
