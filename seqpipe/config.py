"""YAML pipeline recipes: loading, ``--set`` overrides and validation with clear errors.

A recipe has one section per pipeline part, each naming a registered component and
its options, plus sections the trainer reads::

    task:     {name: speech, ...}       # data, loss, metrics, wiring
    features: {name: logmel, n_mels: 80}
    model:    {name: lstm, hidden_size: 256, num_layers: 2}
    decoder:  {name: ctc_greedy}
    data:     {train: data/train.jsonl, valid: data/valid.jsonl}
    train:    {epochs: 10, lr: 1e-3}
    seed: 0

Errors name the file, the key path and what was expected, e.g.
``configs/x.yaml: model.hidden_size: expected a positive integer, got 'big'``.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any

import yaml

from seqpipe.errors import SeqpipeError

COMPONENT_SECTIONS = {
    "task": "task",
    "features": "features",
    "model": "model",
    "decoder": "decoder",
}
OTHER_SECTIONS = {"data", "train", "seed", "name", "description"}


class ConfigError(SeqpipeError):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: ``3e-4`` is a float, ``yes``/``no``/``on`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def load_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """Read a recipe, apply ``key.path=value`` overrides and check its shape."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        config = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections at the top level, got {type(config).__name__}"
        )
    for section in COMPONENT_SECTIONS:
        if isinstance(config.get(section), str):  # shorthand: `model: lstm`
            config[section] = {"name": config[section]}
    for item in overrides:
        apply_override(config, item, source=str(path))
    check_sections(config, source=str(path))
    config.setdefault("_source", str(path))
    return config


def apply_override(config: dict[str, Any], item: str, source: str = "--set") -> None:
    """Apply ``a.b.c=value``; the value is parsed as YAML so numbers and lists keep their type."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = config
    parts = key.strip().split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"{source}: --set {key}: '{'.'.join(parts[: i + 1])}' is not a section"
            )
        node = child
    node[parts[-1]] = value


def check_sections(config: dict[str, Any], source: str) -> None:
    known = set(COMPONENT_SECTIONS) | OTHER_SECTIONS | {"_source"}
    for key in config:
        if key not in known:
            raise ConfigError(
                f"{source}: {key}: unknown section (expected one of: {', '.join(sorted(known - {'_source'}))})"
            )
    for section in COMPONENT_SECTIONS:
        value = config.get(section)
        if value is None:
            continue
        if not isinstance(value, dict) or "name" not in value:
            raise ConfigError(
                f"{source}: {section}: expected a mapping with a 'name' key, got {value!r}"
            )


def split_component(section: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    options = copy.deepcopy(section)
    return options.pop("name"), options


def validate_options(
    target: Any,
    options: dict[str, Any],
    *,
    where: str,
    source: str,
    wired: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Check ``options`` against the type hints of ``target``'s constructor.

    Returns the options converted to the annotated types (``'3'`` stays an error,
    ``1`` for a float becomes ``1.0``). Unknown keys, missing required options and
    wrong types all raise a ConfigError naming ``source`` and ``where.key``. Arguments
    named in ``wired`` (sizes, vocabularies) come from the pipeline, not the user.
    """
    import pydantic

    signature = inspect.signature(target, eval_str=True)  # modules may use postponed annotations
    fields: dict[str, Any] = {}
    accepts_any = False
    for name, param in signature.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            accepts_any = True
            continue
        if name in ("self", "args") or name in wired or param.kind is param.VAR_POSITIONAL:
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    for key in options:
        if key in wired:
            raise ConfigError(
                f"{source}: {where}.{key}: set automatically by the pipeline; remove it"
            )
        if key not in fields and not accepts_any:
            raise ConfigError(
                f"{source}: {where}.{key}: unknown option (expected one of: {', '.join(fields) or 'none'})"
            )
    model = pydantic.create_model(
        f"{where}_options",
        __config__=pydantic.ConfigDict(strict=False, arbitrary_types_allowed=True, extra="allow"),
        **fields,
    )
    try:
        validated = model(**options)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in (where, *error["loc"]))
        if error["type"] == "missing":
            raise ConfigError(f"{source}: {key}: required option is missing") from None
        expected = (
            describe(fields[error["loc"][0]][0])
            if error["loc"] and error["loc"][0] in fields
            else error["msg"]
        )
        raise ConfigError(f"{source}: {key}: expected {expected}, got {error['input']!r}") from None
    return validated.model_dump()


def describe(annotation: Any) -> str:
    """Say in words what a type hint accepts: ``Annotated[int, Gt(0)]`` -> 'a positive integer'."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *constraints = typing.get_args(annotation)
        noun = {int: "integer", float: "number"}.get(base, describe(base))
        bounds = {
            b: getattr(c, b) for c in constraints for b in ("gt", "ge", "lt", "le") if hasattr(c, b)
        }
        if bounds.get("ge") == 0 and "le" in bounds:
            return f"a number between 0 and {bounds['le']}"
        if bounds.get("gt") == 0:
            return f"a positive {noun}"
        if bounds.get("ge") == 0:
            return f"a non-negative {noun}"
        symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
        return f"{describe(base)} " + " and ".join(f"{symbols[k]} {v}" for k, v in bounds.items())
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(
            "null" if a is type(None) else describe(a) for a in typing.get_args(annotation)
        )
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))
