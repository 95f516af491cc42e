"""Typed run configurations: each command's options declared once, as the fields of a frozen dataclass.

A field's :func:`opt` carries everything about the option: its flags (the first one the main name,
e.g. ``--ckpt``, then aliases such as ``--pretrained_1``), default, help, choices, the rule its value
must follow (:class:`Rule`), its ``--help`` group, and whether a resumed training must keep it
(``keep_on_resume``). From a configuration class this module makes, with nothing declared twice:

- the command's argparse parser (:func:`build_parser`): today's flags, aliases, defaults and help;
  a ``bool`` field is a ``store_true`` flag, or ``--x/--no-x`` with ``negatable``; a ``list`` field
  takes one or more values (``nargs='+'``), or one per repeated flag with ``append``; a
  ``dict`` field with ``keys`` one flag per key (the dataset folders);
- the configuration itself (:func:`resolve`): every value from the first of these layers that has
  one, in this order, and where it came from (``Config.sources``):

      "flag"         the command line
      "config file"  --config FILE.yaml (a file written by an earlier run, or by hand)
      "recipe"       the network's training recipe (net/recipe.py)
      "setting"      the setting and network of the run (its tasks, its default folders)
      "default"      the field's own default

- the validation of every value (:func:`problems`): choices and rules, one line per problem naming
  the flag (``--lr -1.0: must be ...``) or, for a value from a file, the file and key;
- its YAML (:func:`to_yaml`: each value with its source as a comment) and the reading of such a
  file (:func:`read_config_file`: unknown keys, wrong types and values outside the choices are refused).

A leaf module: it imports nothing of the project. A command supplies what only it knows through a
``context`` (e.g. ``{"setting": "3D"}``), which callable ``choices``/``keys``/``help`` receive.

    @dataclass(frozen=True, kw_only=True)
    class Training(Config):
        lr: float = opt("--lr", default=1e-4, help="learning rate", rule=at_least(0), keep_on_resume=True)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C", bound="Config")

SOURCES = ("flag", "config file", "recipe", "setting", "default")
"""Where a value can come from, first wins (see the module docstring)."""

CONFIG_NAME = "config.yaml"
"""The file every training and evaluation writes beside its outputs: its resolved configuration."""


class ConfigError(ValueError):
    """A configuration that cannot be used (exit status 2): ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------------
# Declaring options


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy: ``check(value)`` true, else the problem is ``text`` ("must be at least 1")."""

    check: Callable[[Any], bool]
    text: str


def at_least(low: float, text: str | None = None) -> Rule:
    """A finite number >= ``low``."""
    return Rule(lambda v: math.isfinite(v) and v >= low, text or f"must be at least {low}")


def above(low: float, text: str | None = None) -> Rule:
    """A finite number > ``low``."""
    return Rule(lambda v: math.isfinite(v) and v > low, text or f"must be more than {low}")


@dataclass(frozen=True)
class Option:
    """The command-line side of a field (see :func:`opt`)."""

    flags: tuple[str, ...]
    help: str | Callable[[Mapping], str] | None = None
    choices: Sequence | Callable[[Mapping], Sequence] | None = None
    rule: Rule | None = None
    group: str | None = None
    keep_on_resume: bool = False
    metavar: str | None = None
    required: bool = False
    negatable: bool = False  # bool: --x / --no-x (argparse.BooleanOptionalAction)
    append: bool = False  # list: one value per repeated flag
    keys: Callable[[Mapping], Sequence[str]] | None = None  # dict: one flag --<key> per key

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else ""

    @property
    def set_by_command(self) -> bool:
        """A value the command sets itself (no flags, not a dict of flags), e.g. the script's setting."""
        return not self.flags and self.keys is None


def opt(*flags: str, default: Any = None, help: str | Callable[[Mapping], str] | None = None,
        **option: Any) -> Any:
    """A configuration field: its flags and default, help and the keywords of :class:`Option`.
    A list or dict default is copied for every configuration. No flags: a value the command sets
    (e.g. ``setting``, from the script's name), which a config file may state but not change."""
    metadata = {"option": Option(tuple(flags), help=help, **option)}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Base of every command's configuration: its option fields, and where each value came from
    (``sources``: field name -> one of :data:`SOURCES`; not an option, not saved in YAML)."""

    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every option's value, plain YAML types (the form a checkpoint stores)."""
        return {f.name: _plain(getattr(self, f.name)) for f, _, _ in fields_of(type(self))}

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    @property
    def context(self) -> Mapping[str, Any]:
        """What the command's callable choices, keys and help read (e.g. ``{"setting": "3D"}``)."""
        return {}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class FieldType:
    """A field's annotation, read: ``base`` (int, float, str, bool, list, dict), the list items' type, Optional."""

    base: type
    item: type | None
    optional: bool


def _field_type(annotation: Any) -> FieldType:
    args = typing.get_args(annotation)
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        (annotation,) = rest
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        item = typing.get_args(annotation)[-1]
        item = next((a for a in typing.get_args(item) if a is not type(None)), item)
        return FieldType(origin, item, optional)
    return FieldType(annotation, None, optional)


def fields_of(cls: type) -> list[tuple[dataclasses.Field, Option, FieldType]]:
    """The option fields of a configuration class with their option and type: the class's own first, in
    declaration order, then its mixins' (in ``--help``, ``--print_config`` and ``config.yaml``)."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls) if "option" in f.metadata}
    ordered = dict.fromkeys(name for klass in cls.__mro__ for name in klass.__dict__.get("__annotations__", {})
                            if name in by_name)
    return [(by_name[name], by_name[name].metadata["option"], _field_type(hints[name])) for name in ordered]


def defaults_of(cls: type) -> dict[str, Any]:
    """Each option's own default (the "default" layer)."""
    found = {}
    for field, _, _ in fields_of(cls):
        found[field.name] = field.default_factory() if field.default_factory is not dataclasses.MISSING \
            else field.default
    return found


def _text(value: Any, context: Mapping) -> Any:
    return value(context) if callable(value) else value


def _choices(option: Option, context: Mapping) -> list | None:
    choices = _text(option.choices, context)
    return None if choices is None else list(choices)


def resume_keys(cls: type) -> list[str]:
    """The fields a resumed run must keep (``keep_on_resume``), unless ``--allow_config_change``."""
    return [f.name for f, option, _ in fields_of(cls) if option.keep_on_resume]


# --------------------------------------------------------------------------------------------------
# The parser


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless its help already says it, the flag is required or it has none (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "default:" in (action.help or "") or action.required or action.default in (None, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def new_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser: its description, and ``--help`` showing every flag's default."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


NOT_GIVEN = object()
"""The parse default of every flag in :func:`read_command_line`: a value still NOT_GIVEN was not on the command line."""

CONFIG_FLAG, PRINT_CONFIG_FLAG = "--config", "--print_config"


def build_parser(cls: type, description: str, context: Mapping | None = None,
                 defaults: Mapping[str, Any] | None = None, prog: str | None = None,
                 config_file: bool = False) -> argparse.ArgumentParser:
    """The argparse parser of configuration class ``cls``: one argument per flagged field, in groups.

    ``defaults``: the values of the layers below the command line that the command knows already (the
    setting's tasks ...), shown by ``--help`` and taken when a flag is not given. ``config_file``: the
    command takes ``--config FILE.yaml`` and ``--print_config``.
    """
    context = context or {}
    defaults = {**defaults_of(cls), **(defaults or {})}
    parser = new_parser(description, prog)
    groups: dict[str | None, Any] = {None: parser}
    for field, option, kind in fields_of(cls):
        if option.set_by_command:
            parser.set_defaults(**{field.name: defaults[field.name]})
            continue
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        _add_argument(groups[option.group], field.name, option, kind, defaults[field.name], context)
    if config_file:
        parser.add_argument(CONFIG_FLAG, dest="config_file", default=None, metavar="FILE.yaml",
                            help=f"read options from this YAML file (e.g. the {CONFIG_NAME} an earlier run wrote); "
                            "flags given on the command line win over it")
        parser.add_argument(PRINT_CONFIG_FLAG, action="store_true",
                            help="print the resolved configuration (YAML, each value's source as a comment) and exit")
    return parser


def _add_argument(container, name: str, option: Option, kind: FieldType, default: Any, context: Mapping) -> None:
    keywords: dict[str, Any] = {"help": _text(option.help, context)}
    if option.metavar:
        keywords["metavar"] = option.metavar
    if kind.base is dict:  # help: one text for every key, or a mapping key -> text
        helps = keywords["help"]
        for key in _text(option.keys, context):
            container.add_argument(f"--{key}", dest=f"{name}.{key}", default=(default or {}).get(key),
                                   type=kind.item, metavar=option.metavar or "DIR",
                                   help=helps.get(key) if isinstance(helps, Mapping) else helps)
        return
    if kind.base is bool:
        keywords["action"] = argparse.BooleanOptionalAction if option.negatable else "store_true"
        keywords.pop("metavar", None)
    else:
        choices = _choices(option, context)
        if choices is not None:
            keywords["choices"] = choices
        keywords["type"] = kind.item if kind.base is list else kind.base
        if kind.base is list:
            keywords["action" if option.append else "nargs"] = "append" if option.append else "+"
    if option.required:
        keywords["required"] = True
    else:
        keywords["default"] = None if option.append else (list(default) if isinstance(default, list) else default)
    container.add_argument(*option.flags, dest=name, **keywords)


# --------------------------------------------------------------------------------------------------
# Reading the command line and a config file


@dataclass
class Given:
    """What the user gave: the flags on the command line, the values of ``--config FILE`` and the
    problems found reading them (each one line, for the command's preflight)."""

    flags: dict[str, Any]
    file: dict[str, Any]
    file_path: Path | None = None
    print_config: bool = False
    problems: list[str] = dataclasses.field(default_factory=list)


def read_command_line(parser: argparse.ArgumentParser, cls: type, argv: Sequence[str] | None,
                      context: Mapping | None = None) -> Given:
    """Parse ``argv`` with ``parser`` (:func:`build_parser` of ``cls``), keeping only the flags actually
    given (argparse's own errors, a bad choice or number, exit 2 as always), and read ``--config``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # With --config, a required option may come from the file instead (checked by problems()).
    from_file = any(a == CONFIG_FLAG or a.startswith(CONFIG_FLAG + "=") for a in argv)
    required = [a for a in parser._actions if a.required] if from_file else []
    for action in required:
        action.required = False
    dests = [a.dest for a in parser._actions if a.dest not in ("help", "config_file", "print_config")]
    saved = {dest: parser.get_default(dest) for dest in dests}
    try:
        parser.parse_args(argv)  # --help, and argparse's refusals, with the real defaults
        parser.set_defaults(**{dest: NOT_GIVEN for dest in dests if dest not in _append_dests(parser)})
        namespace = parser.parse_args(argv)
    finally:
        parser.set_defaults(**saved)
        for action in required:
            action.required = True
    values = vars(namespace)
    flags: dict[str, Any] = {}
    for dest, value in values.items():
        if value is NOT_GIVEN or dest in ("config_file", "print_config") or value is None and dest in \
                _append_dests(parser):
            continue
        name, _, key = dest.partition(".")
        if key:
            flags.setdefault(name, {})[key] = value
        elif any(f.name == name and o.flags for f, o, _ in fields_of(cls)):
            flags[name] = value
    given = Given(flags, {}, print_config=bool(values.get("print_config")))
    if values.get("config_file"):
        given.file_path = Path(values["config_file"])
        given.file, given.problems = read_config_file(given.file_path, cls, context)
    return given


def _append_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if isinstance(a, argparse._AppendAction)}


def _type_problem(kind: FieldType, value: Any) -> str | None:
    """Why ``value`` (read from YAML) does not have the field's type, else None."""
    if value is None:
        return None if kind.optional else "must not be empty (null)"

    def fits(base: type, v: Any) -> bool:
        if base is Path:
            return isinstance(v, str)
        if base is float:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if base is int:
            return isinstance(v, int) and not isinstance(v, bool)
        return isinstance(v, base)

    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
    if kind.base is list:
        if not isinstance(value, list) or not all(fits(kind.item, v) for v in value):
            return f"must be a list of {names[kind.item].split(' ', 1)[1]}s"
        return None
    if kind.base is dict:
        if not isinstance(value, dict) or not all(v is None or fits(kind.item, v) for v in value.values()):
            return f"must be a mapping of names to {names[kind.item].split(' ', 1)[1]}s"
        return None
    return None if fits(kind.base, value) else f"must be {names[kind.base]}, not {value!r}"


def read_config_file(path: Path, cls: type, context: Mapping | None = None) -> tuple[dict[str, Any], list[str]]:
    """The values of a YAML config file for ``cls`` and the problems with it: a missing or unreadable
    file, unknown keys, wrong types, values outside a field's choices or keys (one line each, naming
    the file and key). A value with a problem is left out. Ranges are checked with the other values
    (:func:`problems`)."""
    context = context or {}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        return {}, [f"--config {path}: cannot read it ({err.strerror or err}); give a YAML file, e.g. the "
                    f"{CONFIG_NAME} of an earlier run"]
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return {}, [f"--config {path}: not valid YAML ({first})"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, [f"--config {path}: must be a mapping of option names to values (key: value lines)"]
    known = {f.name: (option, kind) for f, option, kind in fields_of(cls)}
    values, found = {}, []
    for key, value in data.items():
        if key not in known:
            found.append(f"{path}: unknown key {key!r}; the keys are the options' names without '--' "
                         f"({', '.join(known)})")
            continue
        option, kind = known[key]
        problem = _type_problem(kind, value)
        if problem is None and kind.base is dict and option.keys is not None:
            extra = [k for k in value if k not in _text(option.keys, context)]
            if extra:
                problem = f"unknown entries {', '.join(map(str, extra))} (known: {', '.join(option.keys(context))})"
        if problem is not None:
            found.append(f"{path}: key {key}: {problem}")
            continue
        values[key] = _typed(kind, value)
    return values, found


def _typed(kind: FieldType, value: Any) -> Any:
    """A YAML value of the field's type as the parser gives it (an int for a float field as a float, a path
    as a Path)."""
    if value is None or kind.base not in (float, Path, dict, list):
        return value
    if kind.base in (float, Path):
        return kind.base(value)
    convert = kind.item if kind.item in (float, Path) else (lambda v: v)
    if kind.base is list:
        return [convert(v) for v in value]
    return {k: None if v is None else convert(v) for k, v in value.items()}


# --------------------------------------------------------------------------------------------------
# The merge, the checks and the YAML


def resolve(cls: type[C], given: Given, recipe: Mapping[str, Any] | None = None,
            setting: Mapping[str, Any] | None = None, context: Mapping | None = None) -> C:
    """The configuration of one run: each field from the first layer that has a value for it, in the
    order command line > config file > the network's recipe > the setting > the field's default, and
    where each value came from (``sources``). A value of None is no value (``lr: null`` in a file: the
    recipe's), except the field's own default. A dict
    field (the dataset folders) merges key by key. A field without flags (the script's ``setting``)
    is never taken from the file: ``setting[name]`` decides (see :func:`file_mismatches`)."""
    layers = list(zip(SOURCES, (given.flags, given.file, recipe or {}, setting or {}, defaults_of(cls)), strict=True))
    values, sources = {}, {}
    for field, option, kind in fields_of(cls):
        name = field.name
        if kind.base is dict:
            merged: dict[str, Any] = {}
            for key in _text(option.keys, context or {}) if option.keys else []:
                for _, layer in layers:
                    if (layer.get(name) or {}).get(key) is not None:
                        merged[key] = layer[name][key]
                        break
                else:
                    merged[key] = None
            values[name], sources[name] = merged, "default"
            for source, layer in layers:
                if any(v is not None for v in (layer.get(name) or {}).values()):
                    sources[name] = source
                    break
            continue
        for source, layer in layers:
            if option.set_by_command and source in ("flag", "config file"):
                continue
            if source == "default" or layer.get(name) is not None:
                values[name], sources[name] = layer.get(name), source
                break
    return cls(**values, sources=sources)


def file_mismatches(config: Config, given: Given) -> list[str]:
    """A config file's values for the fields a command sets itself (no flags, e.g. ``setting``) that differ
    from this command's: ``FILE: setting 5D, but this command runs 3D``."""
    found = []
    for field, option, _ in fields_of(type(config)):
        saved = given.file.get(field.name)
        if option.set_by_command and saved is not None and saved != getattr(config, field.name):
            found.append(f"{given.file_path}: {field.name} {saved}, but this command runs {field.name} "
                         f"{getattr(config, field.name)}; use the command of {field.name} {saved}, or remove the key")
    return found


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def where(config: Config, name: str, option: Option, value: Any, file_path: Path | None = None) -> str:
    """How a problem names a value: ``--flag VALUE``, or ``FILE: key KEY = VALUE`` for a value from a config file."""
    if config.source(name) == "config file" and file_path is not None:
        return f"{file_path}: key {name} = {_shown(value)}"
    return f"{option.flag or name} {_shown(value)}"


def problems(config: Config, file_path: Path | None = None) -> list[str]:
    """Every value outside its choices or breaking its rule, one line each (``--lr -1.0: must be a finite
    learning rate >= 0``; a file's value: ``run.yaml: key lr = -1.0: must be ...``). None is not checked."""
    found = []
    for field, option, kind in fields_of(type(config)):
        value = getattr(config, field.name)
        if option.required and value in (None, []):
            found.append(f"{option.flag} is required: give it on the command line, or as {field.name}: in the "
                         f"--config file{f' {file_path}' if file_path else ''}")
        if value is None or kind.base is dict:
            continue
        items = value if kind.base is list else [value]
        choices = _choices(option, config.context)
        bad = [v for v in items if choices is not None and v not in choices]
        if bad:
            found.append(f"{where(config, field.name, option, value, file_path)}: {_shown(bad)} is not one of "
                         f"{', '.join(map(str, choices))}")
        elif option.rule is not None and not all(option.rule.check(v) for v in items):
            found.append(f"{where(config, field.name, option, value, file_path)}: {option.rule.text}")
    return found


def to_yaml(config: Config, header: str | None = None) -> str:
    """The configuration as YAML, each key with its value's source as a comment; read back by ``--config``."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    for field, _, _ in fields_of(type(config)):
        value = _plain(getattr(config, field.name))
        text = yaml.safe_dump({field.name: value}, default_flow_style=False, sort_keys=False, width=1000).rstrip("\n")
        first, *rest = text.splitlines()
        lines.append(f"{first}  # {config.source(field.name)}")
        lines += rest
    return "\n".join(lines) + "\n"



def default_of(cls: type, name: str) -> Any:
    """The declared default of option ``name`` of ``cls`` (for code that needs it without a configuration)."""
    return defaults_of(cls)[name]


def add_option(parser, cls: type, name: str, context: Mapping | None = None, **given: Any) -> None:
    """Add option ``name`` of ``cls``, as declared, to a parser a command builds by hand (``given``:
    keywords that replace the declared ones, e.g. ``help`` or ``default`` where that command differs)."""
    field, option, kind = next(entry for entry in fields_of(cls) if entry[0].name == name)
    default = given.pop("default", defaults_of(cls)[name])
    if given:
        option = dataclasses.replace(option, **given)
    _add_argument(parser, name, option, kind, default, context or {})
