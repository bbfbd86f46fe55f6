"""The command line: fast help, no torch at import, info, device choice."""

import subprocess
import sys

import pytest
import torch

from conftest import REPO, run_seqpipe
from seqpipe.device import pick_device
from seqpipe.errors import SeqpipeError


def test_help_and_plugins_do_not_import_torch():
    code = (
        "import sys\n"
        "from seqpipe.cli import main\n"
        "for args in (['--help'], ['plugins', '--json']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'torchaudio', 'librosa', 'pretty_midi') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_lists_every_command():
    result = run_seqpipe("--help")
    assert result.returncode == 0
    for command in ("transcribe", "generate", "train", "evaluate", "plugins", "info"):
        assert command in result.stdout


def test_info_reports_versions_and_device():
    result = run_seqpipe("info", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert f"torch           {torch.__version__}" in result.stdout
    assert "pretty_midi" in result.stdout and "torchaudio" in result.stdout
    assert "device          cpu" in result.stdout


def test_device_auto_and_override():
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert pick_device(None).type == expected
    assert pick_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_clear_error():
    # the library names its parameter, the CLI its flag
    with pytest.raises(SeqpipeError, match="^device cuda: CUDA is not available"):
        pick_device("cuda")
    result = run_seqpipe("info", "--device", "cuda")
    assert result.returncode == 1
    assert "--device cuda: CUDA is not available" in result.stderr


def test_train_config_errors_are_one_line_with_file_and_key(tmp_path):
    recipe = "seqpipe/recipes/tiny.yaml"
    result = run_seqpipe(
        "train", recipe, "--set", "model.name=lstmm", "--out", str(tmp_path / "run"), cwd=REPO
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{recipe}: model.name: unknown model 'lstmm' (did you mean 'lstm'?" in lines[0]
    result = run_seqpipe(
        "train", recipe, "--set", "model.hidden_size=big", "--out", str(tmp_path / "run"), cwd=REPO
    )
    assert result.returncode == 1
    assert f"{recipe}: model.hidden_size: expected a positive integer, got 'big'" in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a config that does not validate
