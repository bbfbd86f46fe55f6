"""``seqpipe evaluate``: the task's metrics as a table and as JSON, computed correctly.

The WER case is hand-made: an "oracle" acoustic model (a plugin, installed the way a
pip-installed one would be) emits CTC posteriors spelling chosen hypotheses, so the
whole real path runs (bundle load, speech task, greedy CTC decoding, jiwer) and the
expected WER can be counted by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import make_installed_plugin, run_seqpipe

ORACLE = """
import torch
from torch import nn
from seqpipe.hookspecs import hookimpl
from seqpipe.text import encode

# hypothesis by utterance length: short clip -> first, long clip -> second
HYPOTHESES = ["one two", "four six"]


class Oracle(nn.Module):
    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.output_size = output_size
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x, lengths):
        B, T, _ = x.shape
        logits = torch.full((B, T, self.output_size), -20.0, device=x.device)
        logits[:, :, 0] = 0.0  # blank everywhere ...
        for b in range(B):
            text = HYPOTHESES[0] if int(lengths[b]) < 75 else HYPOTHESES[1]
            for i, char in enumerate(encode(text)):  # ... except one frame per character
                logits[b, 2 * i, 0] = -20.0
                logits[b, 2 * i, char] = 0.0
        return logits + 0 * self.unused, lengths
"""

PLUGIN = (
    ORACLE
    + """

@hookimpl
def register_models(register):
    register("oracle", Oracle, help="emits fixed hypotheses (tests)")
"""
)


@pytest.mark.slow  # subprocesses: each pays torch's import
def test_evaluate_prints_hand_counted_wer(tmp_path, plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-oracle", "seqpipe_oracle", PLUGIN)
    rate = 16000
    manifest = tmp_path / "test.jsonl"
    lines = []
    for name, seconds, text in (("a", 0.5, "One, two, THREE."), ("b", 1.0, "four five")):
        sf.write(tmp_path / f"{name}.wav", np.zeros(int(rate * seconds), np.float32) + 0.01, rate)
        lines.append(json.dumps({"audio": f"{name}.wav", "text": text, "duration": seconds}))
    manifest.write_text("\n".join(lines) + "\n")
    bundle = tmp_path / "oracle.safetensors"
    build = (
        "import sys; from seqpipe.pipeline import Pipeline; "
        "Pipeline.from_config({'task': {'name': 'speech'}, 'features': {'name': 'logmel'}, "
        "'model': {'name': 'oracle'}}).save(sys.argv[1])"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])
    )
    subprocess.run([sys.executable, "-c", build, str(bundle)], check=True, env=env, timeout=120)

    result = run_seqpipe("evaluate", str(bundle), str(manifest), site=plugin_site)
    assert result.returncode == 0, result.stderr
    assert "wer (primary)" in result.stdout and "0.4000" in result.stdout  # the table
    # the worst utterances (here both: one error each) name their files
    worst = result.stdout[result.stdout.index("Worst utterances") : result.stdout.index("{")]
    assert "a.wav" in worst and "b.wav" in worst
    assert "one two three" in worst and "four six" in worst
    metrics = json.loads(result.stdout[result.stdout.index("{") :])  # then the JSON
    # refs "one two three" / "four five" (5 words); hyps "one two" / "four six":
    # one deletion + one substitution = 2 errors / 5 words
    assert metrics["wer"] == pytest.approx(0.4)
    assert metrics["examples"] == 2
    import jiwer

    expected_cer = jiwer.cer(["one two three", "four five"], ["one two", "four six"])
    assert metrics["cer"] == pytest.approx(expected_cer)

    # several data sets in one call: a JSON line each; an unreadable one is named, the rest
    # are still scored, and the exit code says something failed
    second = tmp_path / "b.jsonl"
    second.write_text(lines[1] + "\n")
    missing = tmp_path / "missing.jsonl"
    result = run_seqpipe(
        "evaluate",
        str(bundle),
        str(manifest),
        str(missing),
        str(second),
        "--json",
        site=plugin_site,
    )
    assert result.returncode == 1
    assert f"{missing}: cannot read manifest" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["data"] for r in rows] == [str(manifest), str(second)]
    assert [r["wer"] for r in rows] == [pytest.approx(0.4), pytest.approx(0.5)]  # four six


def test_evaluate_json_only_and_missing_bundle(tmp_path):
    from click.testing import CliRunner

    from seqpipe.cli import build_cli

    result = CliRunner().invoke(
        build_cli(), ["evaluate", str(tmp_path / "nope.safetensors"), "x.jsonl", "--json"]
    )
    assert result.exit_code == 1
    assert "nope.safetensors: no such bundle file" in result.output
