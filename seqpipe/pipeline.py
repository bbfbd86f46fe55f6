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
    registry: Registry, kind: str, section: dict[str, Any], *, source: str, wired: dict[str, Any]
):
    """Instantiate one config section; returns (object, resolved section)."""
    name, options = split_component(section)
    try:
        target = registry.get(kind, name).load()
    except SeqpipeError as exc:
        raise SeqpipeError(f"{source}: {_section_of(kind)}.name: {exc}") from None
    accepted = inspect.signature(target).parameters
    options = validate_options(
        target, options, where=_section_of(kind), source=source, wired=frozenset(wired)
    )
    obj = target(**options, **{k: v for k, v in wired.items() if k in accepted})
    return obj, {"name": name, **options}


def _section_of(kind: str) -> str:
    return next(section for section, k in COMPONENT_SECTIONS.items() if k == kind)


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

        def build_model(section: dict[str, Any]) -> nn.Module:
            """One more model of this pipeline's wiring (ensemble members)."""
            where = f"{source}: {split_component(config['model'])[0]} member"
            return build_component(registry, "model", section, source=where, wired=wiring)[0]

        with torch.device("meta") if meta_model else contextlib.nullcontext():
            model, resolved["model"] = build_component(
                registry,
                "model",
                config["model"],
                source=source,
                wired={**wiring, "build_model": build_model},
            )
        decoder = None
        if config.get("decoder"):
            decoder, resolved["decoder"] = build_component(
                registry, "decoder", config["decoder"], source=source, wired=wiring
            )
        return cls(resolved, task, features, model, decoder, wiring)

    # -- bundles -----------------------------------------------------------------

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write the bundle atomically (temp file + rename)."""
        from safetensors.torch import save_file

        from seqpipe.plugins import registry as default_registry

        registry = default_registry()
        components = {}
        for section, kind in COMPONENT_SECTIONS.items():
            if section in self.config:
                found = registry.find(kind, self.config[section]["name"])
                components[section] = {
                    "name": self.config[section]["name"],
                    "plugin": found.plugin if found else None,
                    "package": found.package if found else None,
                }
        metadata = {
            "format": BUNDLE_FORMAT,
            "seqpipe_version": __version__,
            "config": self.config,
            "components": components,
            "info": self.task.bundle_info(),
            **(extra or {}),
        }
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
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
        from safetensors.torch import load_file

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
            state = load_file(str(path), device="cpu")
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
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    try:
        skeleton = cls.from_config(config, registry, meta_model=True)
    except SeqpipeError:
        raise
    except Exception:  # a model that needs real tensors to build: strict loading checks it
        return
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if wanted == stored:
        return
    wrong = sorted(k for k in wanted.keys() | stored.keys() if wanted.get(k) != stored.get(k))
    first = wrong[0]
    asked, has = sum(map(math.prod, wanted.values())), sum(map(math.prod, stored.values()))
    raise SeqpipeError(
        f"{path}: weights do not match the bundle's config: {printable(first)} is "
        f"{wanted.get(first, 'not in the model')} in the config, "
        f"{stored.get(first, 'missing')} in the file ({asked:,} values asked for, {has:,} stored)"
    )


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
    from seqpipe.plugins import ALLOW_ENV, allowed_plugins

    for section, component in metadata.get("components", {}).items():
        kind = COMPONENT_SECTIONS[section]
        if registry.find(kind, component["name"]) is not None:
            continue
        package = pip_name(component.get("package"))
        if package and package != "seqpipe":
            raise SeqpipeError(
                f"{path}: needs {kind} '{component['name']}' from the plugin package "
                f"'{package}', which is not installed (pip install {package})"
                + (f" or not allowed by {ALLOW_ENV}" if allowed_plugins() is not None else "")
            )
        raise SeqpipeError(
            f"{path}: {unknown_name_message(kind, component['name'], registry.names(kind))}"
        )


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
    info: dict[str, Any] = {}
