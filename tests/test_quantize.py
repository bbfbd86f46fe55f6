"""int8 inference (seqpipe.deploy.quantize): what it quantizes, how close it stays, and
when ``--compute-type auto`` uses it."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from seqpipe.cli import build_cli
from seqpipe.deploy.quantize import for_compute_type, int8_model
from seqpipe.errors import ParameterError
from seqpipe.pipeline import Pipeline

BUNDLED = Path(__file__).resolve().parents[1] / "seqpipe" / "bundled"
CTC = {
    "task": {"name": "speech"},
    "features": {"name": "logmel", "n_mels": 40},
    "model": {"name": "ctc_rnn", "cell": "gru", "hidden_size": 64, "num_layers": 2},
    "decoder": {"name": "ctc_greedy"},
}


def test_int8_copy_quantizes_the_rnn_and_linears_and_stays_close():
    torch.manual_seed(0)
    pipeline = Pipeline.from_config(CTC).eval()
    model = int8_model(pipeline.model)
    kinds = {type(m).__module__ for m in model.modules()}
    assert "torch.ao.nn.quantized.dynamic.modules.rnn" in kinds  # the GRU
    assert "torch.ao.nn.quantized.dynamic.modules.linear" in kinds
    assert all(p.dtype == torch.float32 for p in pipeline.model.parameters())  # a copy
    feats, lengths = torch.randn(3, 120, 40), torch.tensor([120, 90, 33])  # padded batch
    with torch.no_grad():
        (y, n), (q, m) = pipeline.model(feats, lengths), model(feats, lengths)
    assert torch.equal(n, m) and q.shape == y.shape
    valid = torch.arange(y.shape[1])[None] < n[:, None]
    assert (q - y)[valid].abs().max() < 0.1
    assert (q.argmax(-1) == y.argmax(-1))[valid].float().mean() > 0.95


def test_compute_type_auto_means_int8_for_speech_on_the_cpu_only():
    speech = Pipeline.from_config(CTC)
    assert for_compute_type(speech, "float32") is speech.model
    assert for_compute_type(speech, "auto") is not speech.model
    other = SimpleNamespace(config={"task": {"name": "melody"}}, device=torch.device("cpu"))
    other.model = torch.nn.Linear(2, 2)
    assert for_compute_type(other, "auto") is other.model
    assert for_compute_type(other, "int8") is not other.model
    gpu = SimpleNamespace(config=CTC, device=torch.device("cuda"), model=speech.model)
    assert for_compute_type(gpu, "auto") is speech.model
    with pytest.raises(ParameterError, match="^compute_type int8: int8 runs on the CPU only"):
        for_compute_type(gpu, "int8")
    with pytest.raises(ParameterError, match="^compute_type int4: not one of"):
        for_compute_type(speech, "int4")


@pytest.mark.skipif(not (BUNDLED / "en-small.safetensors").exists(), reason="not bundled")
def test_the_shipped_model_says_the_same_in_int8_and_float32():
    example = Path(__file__).resolve().parents[1] / "examples" / "seven_three_one.wav"
    texts = [
        CliRunner()
        .invoke(build_cli(), ["transcribe", str(example), "-q", "--compute-type", compute])
        .output.strip()
        for compute in ("float32", "int8")
    ]
    assert texts == ["seven three one"] * 2


def test_int8_stored_weights_take_a_quarter_of_the_bytes_and_load_back_close(tmp_path):
    from safetensors.torch import load_file, save_file

    from seqpipe.deploy.quantize import SCALE_SUFFIX
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipeline import describe_bundle

    torch.manual_seed(0)
    pipeline = Pipeline.from_config(CTC).eval()
    plain, packed = tmp_path / "plain.safetensors", tmp_path / "int8.safetensors"
    pipeline.save(plain)
    pipeline.save(packed, int8_weights=True)
    assert packed.stat().st_size < 0.35 * plain.stat().st_size
    stored = load_file(str(packed))
    for name, w in pipeline.state_dict().items():
        if name + SCALE_SUFFIX in stored:  # a matrix: int8, within half a step of each row
            assert stored[name].dtype == torch.int8 and w.numel() >= 4096
            step = stored[name + SCALE_SUFFIX].view(-1, *[1] * (w.dim() - 1))
            assert ((stored[name].float() * step - w).abs() <= step / 2 + 1e-7).all()
        else:  # biases and norms as they were
            assert torch.equal(stored[name], w)
    assert sum(k.endswith(SCALE_SUFFIX) for k in stored) >= 4  # the GRU's and the head's
    loaded = Pipeline.load(packed)
    assert describe_bundle(packed)["parameters"] == describe_bundle(plain)["parameters"]
    feats, lengths = torch.randn(2, 100, 40), torch.tensor([100, 61])
    with torch.no_grad():
        y, q = pipeline.model(feats, lengths)[0], loaded.model(feats, lengths)[0]
    assert (q - y).abs().max() < 0.05
    stored[next(k for k in stored if k.endswith(SCALE_SUFFIX))] = torch.ones(3)
    save_file(stored, str(packed), metadata=_header(plain))
    with pytest.raises(SeqpipeError, match=rf"^{packed}: .*int8_scale does not fit"):
        Pipeline.load(packed)


def _header(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()
