"""scripts/widen.py: a grown ctc_rnn computes what the narrow one did."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqpipe.config import parse_yaml
from seqpipe.pipeline import Pipeline

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "widen.py"
RECIPE = """
task: {{name: speech}}
features: {{name: logmel, sample_rate: 8000, n_mels: 16}}
model: {{name: ctc_rnn, cell: gru, hidden_size: {hidden}, num_layers: 2, channels: 4, subsample: 2}}
"""


def grow(tmp_path, hidden: int) -> tuple[Pipeline, Pipeline, dict]:
    torch.manual_seed(0)
    narrow = Pipeline.from_config(parse_yaml(RECIPE.format(hidden=8)))
    narrow.save(tmp_path / "narrow.safetensors")
    (tmp_path / "wide.yaml").write_text(RECIPE.format(hidden=hidden))
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *(str(tmp_path / f) for f in ("narrow.safetensors", "wide.yaml", "wide.safetensors")),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    wide = Pipeline.load(tmp_path / "wide.safetensors", device=torch.device("cpu"))
    return narrow.eval(), wide.eval(), load_file(str(tmp_path / "wide.safetensors"))


def logits(pipeline: Pipeline, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out, out_lengths = pipeline.model(x, lengths)
    return torch.cat([o[:n] for o, n in zip(out, out_lengths, strict=True)])


FEATS = torch.randn(3, 40, 16), torch.tensor([40, 31, 17])


def test_doubling_the_width_keeps_the_outputs(tmp_path):
    """H -> 2H copies every projection dim once, so even the LayerNorm is exact."""
    narrow, wide, _ = grow(tmp_path, 16)
    assert sum(p.numel() for p in wide.parameters()) > 2 * sum(
        p.numel() for p in narrow.parameters()
    )
    torch.testing.assert_close(logits(wide, *FEATS), logits(narrow, *FEATS), atol=1e-5, rtol=1e-4)


def test_new_units_do_not_reach_the_old_ones(tmp_path):
    """Whatever the new units' incoming weights are, the outputs stay the same."""
    _, wide, state = grow(tmp_path, 12)
    before = logits(wide, *FEATS)
    with torch.no_grad():
        for p in wide.model.rnn.parameters():
            rows = torch.cat([torch.arange(g * 12 + 8, (g + 1) * 12) for g in range(3)])
            p[rows] = torch.randn_like(p[rows])  # every gate's rows of the four new units
    torch.testing.assert_close(logits(wide, *FEATS), before)
    assert not torch.equal(
        state["model.rnn.rnn.weight_hh_l0"], wide.state_dict()["model.rnn.rnn.weight_hh_l0"]
    )


def test_a_narrower_recipe_is_refused(tmp_path):
    with pytest.raises(AssertionError, match="below the run's 8"):
        grow(tmp_path, 4)
