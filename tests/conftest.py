"""Shared fixtures: fake installed plugins, a subprocess runner for the CLI, one torch thread."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_thread():
    """Small models on two shared cores: extra intra-op threads only fight the other test
    processes for the CPU (and a module's sums then add up as in an OMP_NUM_THREADS=1
    subprocess). A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_installed_plugin(
    site: Path, dist: str, module: str, code: str, entry_name: str | None = None
) -> None:
    """Write ``module.py`` plus a ``.dist-info`` with a ``seqpipe`` entry point into ``site``.

    Putting ``site`` on PYTHONPATH makes importlib.metadata see an installed
    distribution, so the plugin loads exactly as a pip-installed one would.
    """
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[seqpipe]\n{entry_name or module} = {module}\n")


def run_seqpipe(
    *args: str, site: Path | None = None, env: dict[str, str] | None = None, cwd=None, timeout=120
):
    full_env = {k: v for k, v in os.environ.items() if k != "SEQPIPE_PLUGINS"}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(site), full_env.get("PYTHONPATH", "")])
        )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "seqpipe", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    return tmp_path / "site"
