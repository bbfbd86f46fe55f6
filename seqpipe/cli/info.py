"""``seqpipe info``: versions, device and loaded plugins, for bug reports."""

import importlib.metadata
import platform

import click


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@click.command("info")
@click.option("--device", default=None, help="Device to report on (default: auto).")
def command(device: str | None) -> None:
    """Print versions, the selected device and loaded plugins."""
    import torch

    from seqpipe.device import device_name, pick_device
    from seqpipe.plugins import load

    rows = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("seqpipe", "torch", "torchaudio", "librosa", "pretty_midi", "pluggy"):
        rows[package] = _version(package)
    rows["torch"] = torch.__version__ + (
        f" (built for CUDA {torch.version.cuda})" if torch.version.cuda else ""
    )
    rows["cuda available"] = str(torch.cuda.is_available())
    rows["device"] = device_name(pick_device(device))
    plugins = load().info.values()
    rows["plugins"] = (
        ", ".join(
            f"{p.name} {p.version}" + (" (failed)" if p.error else "")
            for p in plugins
            if not p.builtin
        )
        or "(built-ins only)"
    )
    width = max(map(len, rows))
    for key, value in rows.items():
        click.echo(f"{key:<{width}}  {value}")
