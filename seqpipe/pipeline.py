"""A pipeline (task + features -> model -> decoder) and its one-file bundle.

A bundle is a single ``.safetensors`` file: the weights as tensors, and in the
header's metadata the resolved config, the plugins it needs and facts such as the
vocabulary and sample rate. Loading it never unpickles anything.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import pydantic
import torch
from torch import nn

from seqpipe import __version__
from seqpipe.atomic import atomic_path
from seqpipe.config import COMPONENT_SECTIONS, OTHER_SECTIONS, split_component, validate_options
from seqpipe.errors import SeqpipeError, printable
from seqpipe.features.base import AudioFeatures
from seqpipe.registry import Registry, unknown_name_message

BUNDLE_FORMAT = "seqpipe-bundle/1"
METADATA_KEY = "seqpipe"


def build_component(
    registry: Registry,
    kind: str,
    section: dict[str, Any],
    *,
    source: str,
    wired: dict[str, Any],
    where: str | None = None,
):
    """Instantiate one config section; returns (object, resolved section)."""
    where = where or _section_of(kind)
    name, options = split_component(section)
    try:
        target = registry.get(kind, name).load()
    except SeqpipeError as exc:
        raise SeqpipeError(f"{source}: {where}.name: {exc}") from None
    accepted = inspect.signature(target).parameters
    options = validate_options(target, options, where=where, source=source, wired=frozenset(wired))
    obj = target(**options, **{k: v for k, v in wired.items() if k in accepted})
    return obj, {"name": name, **options}


def _section_of(kind: str) -> str:
    return next(section for section, k in COMPONENT_SECTIONS.items() if k == kind)


def check_shape(registry: Registry, task, task_name: str, model_name: str, source: str) -> None:
    """The model's declared shape (at registration) is one the task can train; a model
    that declares none is not checked."""
    from seqpipe.registry import SHAPES

    wanted = tuple(getattr(task, "model_shapes", ()) or ())
    found = registry.find("model", model_name)
    if not wanted or found is None or not found.shape or set(found.shape) & set(wanted):
        return
    needs = " or ".join(f"{s} model ({SHAPES[s]})" for s in wanted)
    raise SeqpipeError(
        f"{source}: model.name: task '{task_name}' needs a {needs}; "
        f"model '{model_name}' is {' / '.join(found.shape)}"
    )


class Pipeline(nn.Module):
    """Holds the parts of one job. ``features`` and ``model`` own all the weights."""

    def __init__(
        self,
        config: dict[str, Any],
        task,
        features,
        model: nn.Module,
        decoder=None,
        wiring: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.config = config
        self.task = task
        self.features = features  # an nn.Module (audio) or a tokenizer object (MIDI)
        self.model = model
        self.decoder = decoder
        self._wiring = wiring
        self.source: str | None = None  # the bundle file, once loaded from one
        self.bundle_metadata: dict[str, Any] = {}
        self.cells: list[str] = []  # the recurrent cores the model's ``cell:`` options built

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- what the parts say about the data (features/base.py, the task's wiring) -----

    @property
    def wiring(self) -> dict[str, Any]:
        """What the task handed the model and decoder (sizes, ``vocab``, ``blank``)."""
        if self._wiring is None:
            self._wiring = self.task.wire(self.features)
        return self._wiring

    @property
    def sample_rate(self) -> int | None:
        """Audio samples per second the features read; None for a pipeline of MIDI tokens."""
        return self.features.sample_rate if isinstance(self.features, AudioFeatures) else None

    @property
    def frame_seconds(self) -> float | None:
        """Seconds between feature frames; None without audio features."""
        if not isinstance(self.features, AudioFeatures):
            return None
        return self.features.hop_length / self.features.sample_rate

    @property
    def lead_seconds(self) -> float:
        """How long before the audio's first sample feature frame 0 starts (padding)."""
        return self.features.lead_seconds if isinstance(self.features, AudioFeatures) else 0.0

    @property
    def labels(self) -> list[str] | None:
        """The output tokens a text decoder spells with (``vocab``); None for other tasks."""
        vocab = self.wiring.get("vocab")
        return list(vocab) if vocab is not None else None

    @property
    def blank(self) -> int:
        """The CTC blank among :attr:`labels` (0 unless the task says otherwise)."""
        return int(self.wiring.get("blank", 0))

    @classmethod
    def from_config(
        cls, config: dict[str, Any], registry: Registry | None = None, *, meta_model: bool = False
    ) -> Pipeline:
        """Build every part named in ``config``; errors name the config file and key.

        ``meta_model``: the model on the meta device (shapes without memory)."""
        if registry is None:
            from seqpipe.plugins import registry as default_registry

            registry = default_registry()
        source = config.get("_source", "<config>")
        for section in ("task", "features", "model"):
            if section not in config:
                raise SeqpipeError(f"{source}: {section}: required section is missing")
        resolved = {
            k: copy.deepcopy(v)
            for k, v in config.items()
            if k not in COMPONENT_SECTIONS and k != "_source"
        }
        task, resolved["task"] = build_component(
            registry, "task", config["task"], source=source, wired={}
        )
        features, resolved["features"] = build_component(
            registry, "features", config["features"], source=source, wired={}
        )
        wiring = task.wire(features)
        model_name = split_component(config["model"])[0]
        check_shape(registry, task, resolved["task"]["name"], model_name, source)
        cells: list[str] = []

        def build_cell(spec: Any, **sizes: Any) -> nn.Module:
            """The recurrent core a composite's ``cell:`` names (models/core.py)."""
            section = dict(spec) if isinstance(spec, dict) else {"name": spec}
            if "name" not in section:
                raise SeqpipeError(
                    f"{source}: model.cell: expected a name or a mapping with 'name'"
                )
            cells.append(str(section["name"]))
            return build_component(
                registry, "cell", section, source=source, wired=sizes, where="model.cell"
            )[0]

        def build_model(section: dict[str, Any]) -> nn.Module:
            """One more model of this pipeline's wiring (ensemble members)."""
            where = f"{source}: {model_name} member"
            return build_component(registry, "model", section, source=where, wired=model_wired)[0]

        model_wired = {**wiring, "build_model": build_model, "build_cell": build_cell}
        with torch.device("meta") if meta_model else contextlib.nullcontext():
            model, resolved["model"] = build_component(
                registry, "model", config["model"], source=source, wired=model_wired
            )
        decoder = None
        if config.get("decoder"):
            decoder, resolved["decoder"] = build_component(
                registry, "decoder", config["decoder"], source=source, wired=wiring
            )
        pipeline = cls(resolved, task, features, model, decoder, wiring)
        pipeline.cells = sorted(set(cells))
        return pipeline

    # -- bundles -----------------------------------------------------------------

    def save(
        self,
        path: str | os.PathLike,
        extra: dict[str, Any] | None = None,
        int8_weights: bool = False,
    ) -> Path:
        """Write the bundle atomically (temp file + rename); ``int8_weights``: its weight
        matrices in int8 with a scale per row (``deploy.quantize.pack_int8``)."""
        from safetensors.torch import save_file

        from seqpipe.plugins import load

        plugins = load()

        def describe(kind: str, name: str) -> dict[str, Any]:
            found = plugins.registry.find(kind, name)
            plugin = plugins.info.get(found.plugin) if found else None
            return {
                "name": name,
                "plugin": found.plugin if found else None,
                "package": found.package if found else None,
                "version": plugin.version if plugin else None,
            }

        components = {
            section: describe(kind, self.config[section]["name"])
            for section, kind in COMPONENT_SECTIONS.items()
            if section in self.config
        }
        metadata = {
            "format": BUNDLE_FORMAT,
            "seqpipe_version": __version__,
            "config": self.config,
            "components": components,
            "cells": [describe("cell", name) for name in self.cells],
            "info": self.task.bundle_info(),
            **(extra or {}),
        }
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if int8_weights:
            from seqpipe.deploy.quantize import pack_int8

            tensors = pack_int8(tensors)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata)})
        return Path(path)

    @classmethod
    def load(
        cls, name_or_path: str | os.PathLike, device: str | torch.device | None = "cpu"
    ) -> Pipeline:
        """Load a bundle by file path or registered name, onto ``device``.

        Nothing in the file is trusted: the header must match the bundle schema, the
        config may not ask for more weights than the file stores (checked on the meta
        device, before any memory is allocated), and side files (LM, lexicon) must lie
        in the bundle's own folder or among seqpipe's bundled models.
        """
        from seqpipe.plugins import registry as default_registry

        registry = default_registry()
        path = resolve_bundle(name_or_path, registry)
        metadata = read_bundle_metadata(path)
        check_components(path, metadata, registry)
        config = dict(metadata["config"], _source=str(path))
        config, side_files = _side_files(config, path)
        _check_sizes(cls, config, path, registry)
        pipeline = cls.from_config(config, registry)
        if side_files:  # the bundle's own names, not this machine's paths
            pipeline.config["decoder"].update(side_files)
        try:
            state = read_weights(path)
            check_keys(path, set(pipeline.state_dict()), set(state))
            pipeline.load_state_dict(state, strict=True)
        except (RuntimeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise SeqpipeError(
                f"{path}: weights do not match the bundle's config: {first}"
            ) from None
        pipeline.bundle_metadata = metadata
        pipeline.source = str(path)
        pipeline.eval()
        return pipeline.to(device) if device is not None else pipeline


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A bundle's tensors as float weights (int8-stored ones unpacked), on the CPU."""
    from safetensors.torch import load_file

    from seqpipe.deploy.quantize import SCALE_SUFFIX, unpack_int8

    state = load_file(str(path), device="cpu")
    if any(k.endswith(SCALE_SUFFIX) for k in state):
        state = unpack_int8(state, path)
    return state


def _stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each weight's shape as the file stores it (an int8 weight's scales left out)."""
    from safetensors import safe_open

    from seqpipe.deploy.quantize import SCALE_SUFFIX

    with safe_open(str(path), framework="pt") as f:
        return {
            k: tuple(f.get_slice(k).get_shape())
            for k in f.keys()  # noqa: SIM118
            if not k.endswith(SCALE_SUFFIX)
        }


SIDE_FILES = ("lm", "lexicon")  # decoder options that name files


def _side_files(config: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config with the decoder's side files resolved inside the bundle's folder or
    seqpipe's bundled models (a bundle may not read any other file), and their old values."""
    from seqpipe.bundled import HERE

    decoder = config.get("decoder")
    if not isinstance(decoder, dict):
        return config, {}
    folders = [path.resolve().parent, HERE.resolve()]
    original = {k: decoder[k] for k in SIDE_FILES if decoder.get(k) not in (None, "")}
    resolved = dict(decoder)
    for key, value in original.items():
        name = Path(str(value))
        found = None
        if not name.is_absolute() and ".." not in name.parts:
            found = next(
                (
                    (folder / name).resolve()
                    for folder in folders
                    if (folder / name).resolve().is_relative_to(folder)
                    and (folder / name).is_file()
                ),
                None,
            )
        if found is None:
            raise SeqpipeError(
                f"{path}: decoder.{key}: {printable(repr(value))} is not a file in the bundle's "
                f"folder ({path.resolve().parent}) or among seqpipe's bundled models"
            )
        resolved[key] = str(found)
    return {**config, "decoder": resolved}, original


def _check_sizes(cls, config: dict[str, Any], path: Path, registry: Registry) -> None:
    """Build the model on the meta device (no memory) and compare every weight's shape
    with what the file stores, so a config asking for 10^15 weights fails in a moment."""
    stored = _stored_shapes(path)
    try:
        skeleton = cls.from_config(config, registry, meta_model=True)
    except SeqpipeError:
        raise
    except Exception:  # a model that needs real tensors to build: strict loading checks it
        return
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if wanted == stored:
        return
    check_keys(path, set(wanted), set(stored))
    wrong = sorted(k for k in wanted.keys() | stored.keys() if wanted.get(k) != stored.get(k))
    first = wrong[0]
    asked, has = sum(map(math.prod, wanted.values())), sum(map(math.prod, stored.values()))
    raise SeqpipeError(
        f"{path}: weights do not match the bundle's config: {printable(first)} is "
        f"{wanted.get(first, 'not in the model')} in the config, "
        f"{stored.get(first, 'missing')} in the file ({asked:,} values asked for, {has:,} stored)"
    )


def check_keys(path: Path, wanted: set[str], stored: set[str], shown: int = 5) -> None:
    """The model's weight names equal the file's, or one line naming the differences
    (a parameter renamed by a new version of a plugin shows up here)."""
    missing, unexpected = sorted(wanted - stored), sorted(stored - wanted)
    if not missing and not unexpected:
        return

    def names(keys: list[str]) -> str:
        more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
        return ", ".join(printable(k) for k in keys[:shown]) + more

    parts = [f"missing in the file: {names(missing)}"] if missing else []
    parts += [f"not in the model: {names(unexpected)}"] if unexpected else []
    raise SeqpipeError(f"{path}: weights do not match the bundle's config: {'; '.join(parts)}")


def pip_name(package: Any) -> str | None:
    """``package`` if it is a valid PEP 508 distribution name (safe to print in a pip
    command), else None."""
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(package, str):
        return None
    try:
        req = Requirement(package)
    except InvalidRequirement:
        return None
    plain = not (req.extras or req.specifier or req.url or req.marker)
    return package if plain and req.name == package else None


def check_components(path: Path, metadata: dict[str, Any], registry: Registry) -> None:
    """Every component the bundle names is installed, or one line saying what to install."""
    from seqpipe.plugins import ALLOW_ENV

    needed = [(COMPONENT_SECTIONS[s], c) for s, c in metadata.get("components", {}).items()]
    needed += [("cell", c) for c in metadata.get("cells", [])]
    for kind, component in needed:
        if registry.find(kind, component["name"]) is not None:
            continue
        package = pip_name(component.get("package"))
        if package and package != "seqpipe":
            raise SeqpipeError(
                f"{path}: needs {kind} '{component['name']}' from the plugin package "
                f"'{package}', which is not installed (pip install {package})"
                + (
                    f" or not allowed by {ALLOW_ENV}"
                    if os.environ.get(ALLOW_ENV) is not None
                    else ""
                )
            )
        raise SeqpipeError(
            f"{path}: {unknown_name_message(kind, component['name'], registry.names(kind))}"
        )


def describe_bundle(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """What ``seqpipe inspect`` shows: the header's components, packages and versions,
    config and facts, and the weights' count and size, without loading any tensor."""
    from seqpipe.plugins import registry

    path = resolve_bundle(name_or_path, registry())
    metadata = read_bundle_metadata(path)
    shapes = list(_stored_shapes(path).values())
    return {
        "path": str(path),
        "format": metadata["format"],
        "seqpipe_version": metadata.get("seqpipe_version", ""),
        "components": metadata.get("components", {}),
        "cells": metadata.get("cells", []),
        "config": metadata["config"],
        "info": metadata.get("info", {}),
        "tensors": len(shapes),
        "parameters": sum(math.prod(shape) for shape in shapes),
        "bytes": path.stat().st_size,
    }


def resolve_bundle(name_or_path: str | os.PathLike, registry: Registry) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    component = registry.find("bundle", str(name_or_path))
    if component is None:
        if path.suffix or os.sep in str(name_or_path):
            raise SeqpipeError(f"{name_or_path}: no such bundle file")
        raise SeqpipeError(
            unknown_name_message("model", str(name_or_path), registry.names("bundle"))
        )
    bundled = Path(component.load())
    if not bundled.exists():
        raise SeqpipeError(
            f"bundled model '{name_or_path}' is registered but its file is missing: {bundled}"
        )
    return bundled


def read_bundle_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read a bundle's header without loading its tensors; clear errors for bad files."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise SeqpipeError(
            f"{path}: not a valid seqpipe bundle ({type(exc).__name__}: {exc})"
        ) from None
    if raw is None:
        raise SeqpipeError(
            f"{path}: a safetensors file but not a seqpipe bundle (no '{METADATA_KEY}' metadata)"
        )
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise SeqpipeError(f"{path}: bundle header is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise SeqpipeError(
            f"{path}: bundle header is a JSON {type(metadata).__name__}, not an object"
        )
    if metadata.get("format") != BUNDLE_FORMAT:
        raise SeqpipeError(
            f"{path}: unsupported bundle format {printable(repr(metadata.get('format')))} "
            f"(expected {BUNDLE_FORMAT})"
        )
    try:
        BundleHeader.model_validate(metadata)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "header"
        raise SeqpipeError(
            f"{path}: bad bundle header: {printable(where)}: {error['msg']}"
        ) from None
    unknown = sorted(set(metadata["config"]) - set(COMPONENT_SECTIONS) - OTHER_SECTIONS, key=str)
    if unknown:
        raise SeqpipeError(
            f"{path}: bad bundle header: config.{printable(unknown[0])}: unknown section"
        )
    return metadata


NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"  # component names: no spaces, quotes, escapes


class _Section(pydantic.BaseModel):
    """One component section of the config: a valid name and its options."""

    model_config = pydantic.ConfigDict(extra="allow")
    name: str = pydantic.Field(pattern=NAME)


class _Component(pydantic.BaseModel):
    name: str = pydantic.Field(pattern=NAME)
    plugin: str | None = None
    package: str | None = None
    version: str | None = None


class _Config(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    task: _Section
    features: _Section
    model: _Section
    decoder: _Section | None = None


class BundleHeader(pydantic.BaseModel):
    """The schema of a bundle's ``seqpipe`` metadata (what :meth:`Pipeline.save` writes)."""

    model_config = pydantic.ConfigDict(extra="allow")
    format: str
    seqpipe_version: str = ""
    config: _Config
    components: dict[Literal["task", "features", "model", "decoder"], _Component] = {}
    cells: list[_Component] = []
    info: dict[str, Any] = {}
