"""``seqpipe install`` / ``seqpipe uninstall``: pip, run by seqpipe's own Python, so a
plugin lands in the environment seqpipe runs in (as ``llm install`` does)."""

import subprocess
import sys

import click


def pip(*args: str) -> None:
    """``python -m pip ARGS`` with seqpipe's interpreter; its exit status becomes ours."""
    result = subprocess.run([sys.executable, "-m", "pip", *args])
    if result.returncode:
        raise SystemExit(result.returncode)


@click.command("install")
@click.argument("packages", nargs=-1, required=True)
@click.option("-U", "--upgrade", is_flag=True, help="upgrade the packages to their newest versions")
@click.option("-e", "--editable", help="install a local plugin folder in editable mode")
def command(packages, upgrade, editable) -> None:
    """Install plugin PACKAGES into seqpipe's environment (pip install)."""
    pip("install", *(["--upgrade"] if upgrade else []), *(["-e", editable] if editable else []),
        *packages)  # fmt: skip
