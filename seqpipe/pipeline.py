"""A pipeline (task + features -> model -> decoder) and its one-file bundle.

A bundle is a single ``.safetensors`` file: the weights as tensors, and in the
header's metadata the resolved config, the plugins it needs and facts such as the
vocabulary and sample rate. Loading it never unpickles anything.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqpipe import __version__
from seqpipe.atomic import atomic_path
from seqpipe.config import COMPONENT_SECTIONS, split_component, validate_options
from seqpipe.errors import SeqpipeError
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

    def __init__(self, config: dict[str, Any], task, features, model: nn.Module, decoder=None):
        super().__init__()
        self.config = config
        self.task = task
        self.features = features  # an nn.Module (audio) or a tokenizer object (MIDI)
        self.model = model
        self.decoder = decoder

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @classmethod
    def from_config(cls, config: dict[str, Any], registry: Registry | None = None) -> Pipeline:
        """Build every part named in ``config``; errors name the config file and key."""
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
        model, resolved["model"] = build_component(
            registry, "model", config["model"], source=source, wired=wiring
        )
        decoder = None
        if config.get("decoder"):
            decoder, resolved["decoder"] = build_component(
                registry, "decoder", config["decoder"], source=source, wired=wiring
            )
        return cls(resolved, task, features, model, decoder)

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
        """Load a bundle by file path or registered name, onto ``device``."""
        from safetensors.torch import load_file

        from seqpipe.plugins import ALLOW_ENV, allowed_plugins
        from seqpipe.plugins import registry as default_registry

        registry = default_registry()
        path = resolve_bundle(name_or_path, registry)
        metadata = read_bundle_metadata(path)
        for section, component in metadata.get("components", {}).items():
            kind = COMPONENT_SECTIONS[section]
            if registry.find(kind, component["name"]) is None:
                package = component.get("package")
                if package and package != "seqpipe":
                    raise SeqpipeError(
                        f"{path}: needs {kind} '{component['name']}' from the plugin package "
                        f"'{package}', which is not installed (pip install {package})"
                        + (
                            f" or not allowed by {ALLOW_ENV}"
                            if allowed_plugins() is not None
                            else ""
                        )
                    )
                raise SeqpipeError(
                    f"{path}: {unknown_name_message(kind, component['name'], registry.names(kind))}"
                )
        config = dict(metadata["config"], _source=str(path))
        pipeline = cls.from_config(config, registry)
        try:
            state = load_file(str(path), device="cpu")
            pipeline.load_state_dict(state, strict=True)
        except (RuntimeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise SeqpipeError(
                f"{path}: weights do not match the bundle's config: {first}"
            ) from None
        pipeline.bundle_metadata = metadata
        pipeline.eval()
        return pipeline.to(device) if device is not None else pipeline


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
    metadata = json.loads(raw)
    if metadata.get("format") != BUNDLE_FORMAT:
        raise SeqpipeError(
            f"{path}: unsupported bundle format {metadata.get('format')!r} (expected {BUNDLE_FORMAT})"
        )
    return metadata
