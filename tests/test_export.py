"""ONNX export: onnxruntime matches PyTorch for every model kind, and the services run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from seqpipe.deploy.export import TOLERANCE, export_onnx  # noqa: E402
from seqpipe.deploy.runtime import OnnxLM, read_metadata, session  # noqa: E402
from seqpipe.errors import SeqpipeError  # noqa: E402
from seqpipe.midi import Note  # noqa: E402
from seqpipe.pipeline import Pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def speech(model: dict, **features) -> dict:
    features = {"name": "logmel", "sample_rate": 8000, "n_mels": 16, **features}
    return {"task": {"name": "speech"}, "features": features, "model": model}


CLASSIFY = {"name": "classify", "labels": ["yes", "no", "maybe"], "sample_rate": 8000}
MELODY = {"name": "melody", "sample_melodies": 0}
CTC = {"name": "ctc_rnn", "hidden_size": 16, "num_layers": 2, "channels": 4}
KINDS = {
    "ctc_rnn gru": (speech(CTC), "ctc"),
    "ctc_rnn lstm subsample 4": (speech({**CTC, "cell": "lstm", "subsample": 4}), "ctc"),
    "ctc_ensemble": (speech({"name": "ctc_ensemble", "member": {**CTC, "num_layers": 1}}), "ctc"),
    "rnn frames": (speech({"name": "rnn", "hidden_size": 8, "bidirectional": True}), "ctc"),
    "gru frames + attention": (
        speech({"name": "gru", "hidden_size": 8, "bidirectional": True, "self_attention": True}),
        "ctc",
    ),
    "classifier attention": (
        {
            "task": CLASSIFY,
            "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 20},
            "model": {"name": "classifier", "hidden_size": 16, "pooling": "attention"},
        },
        "classifier",
    ),
    "classifier last gru": (
        {
            "task": CLASSIFY,
            "features": {"name": "mfcc", "sample_rate": 8000},
            "model": {"name": "classifier", "cell": "gru", "hidden_size": 16, "pooling": "last"},
        },
        "classifier",
    ),
    "rnn_lm lstm": (
        {
            "task": MELODY,
            "features": {"name": "melody_events"},
            "model": {"name": "rnn_lm", "embedding_size": 16, "hidden_size": 32, "num_layers": 2},
        },
        "lm_step",
    ),
    "rnn_lm gru + attention window": (
        {
            "task": MELODY,
            "features": {"name": "melody_events"},
            "model": {
                "name": "rnn_lm",
                "cell": "gru",
                "embedding_size": 16,
                "hidden_size": 32,
                "num_layers": 1,
                "attention_window": 8,
            },  # fmt: skip
        },
        "lm_step",
    ),
    "rnn_lm lstm + lookback": (
        {
            "task": MELODY,
            "features": {"name": "melody_events"},
            "model": {
                "name": "rnn_lm",
                "embedding_size": 16,
                "hidden_size": 32,
                "num_layers": 2,
                "lookback_bars": [1, 2, 4, 8],
                "lookback_size": 8,
            },  # fmt: skip
        },
        "lm_step",
    ),
    "rnn_lm gru + lookback + attention window": (
        {
            "task": MELODY,
            "features": {"name": "melody_events"},
            "model": {
                "name": "rnn_lm",
                "cell": "gru",
                "embedding_size": 16,
                "hidden_size": 32,
                "num_layers": 1,
                "attention_window": 8,
                "lookback_bars": [1, 2],
                "lookback_size": 4,
            },  # fmt: skip
        },
        "lm_step",
    ),
}


def build(config: dict) -> Pipeline:
    torch.manual_seed(0)
    pipeline = Pipeline.from_config(config)
    for p in pipeline.parameters():  # weights large enough that outputs are far from uniform
        p.data.mul_(3.0)
    if hasattr(pipeline.model, "copy_run"):  # untrained copy scores are 0: make them count
        pipeline.model.copy_run.data.normal_()
    return pipeline.eval()


def repeating_tune(pipeline) -> list[int]:
    """<bos> and five bars of one 4/4 bar repeated: every lookback finds its notes."""
    notes = [Note(62 + i % 4 * 2, 12 * i, 12) for i in range(40)]
    return [1, *pipeline.features.encode_notes(notes)]


@pytest.mark.parametrize("name", list(KINDS))
def test_onnxruntime_matches_pytorch_at_two_batch_sizes_and_lengths(name, tmp_path):
    config, kind = KINDS[name]
    result = export_onnx(build(config), tmp_path / "m.onnx")
    assert result.kind == kind
    assert len(result.checks) == 4  # batch 1 and 3, two lengths (LM: two random states)
    assert result.max_abs_diff < TOLERANCE
    meta = read_metadata(tmp_path / "m.onnx")
    assert (
        meta["kind"] == kind
        and meta["config"]["model"] == config["model"] | meta["config"]["model"]
    )


def test_a_padded_batch_gives_each_utterance_its_own_outputs(tmp_path):
    """Unequal lengths in one batch: the backward direction never sees the padding."""
    pipeline = build(speech(CTC))
    export_onnx(pipeline, tmp_path / "m.onnx")
    sess = session(str(tmp_path / "m.onnx"))
    torch.manual_seed(1)
    lengths = torch.tensor([57, 40, 23])
    feats = torch.randn(3, 57, 16) * (torch.arange(57)[None, :, None] < lengths[:, None, None])
    log_probs, out_lengths = sess.run(None, {"feats": feats.numpy(), "lengths": lengths.numpy()})
    for row, n in enumerate(lengths.tolist()):
        alone, alone_lengths = sess.run(
            None,
            {"feats": feats[row : row + 1, :n].numpy(), "lengths": lengths[row : row + 1].numpy()},
        )
        m = int(out_lengths[row])
        assert m == int(alone_lengths[0]) == alone.shape[1]
        assert abs(log_probs[row, :m] - alone[0]).max() < 1e-5
        with torch.no_grad():
            want, _ = pipeline.model(feats[row : row + 1, :n], lengths[row : row + 1])
        assert abs(torch.log_softmax(want, -1)[0].numpy() - alone[0]).max() < TOLERANCE


@pytest.mark.parametrize("features", ["logmel", "mfcc"])
def test_front_end_in_the_graph_matches_torchaudio(features, tmp_path):
    pipeline = build(speech(CTC, name=features, n_mels=20))
    result = export_onnx(pipeline, tmp_path / "m.onnx", features=True)
    assert result.features and result.max_abs_diff < TOLERANCE
    names = [i.name for i in session(str(tmp_path / "m.onnx")).get_inputs()]
    assert names == ["waves", "lengths"]
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(props["sample_rate"]) == 8000
    assert json.loads(props["features"])["name"] == features
    assert json.loads(props["labels"]) == pipeline.labels


def test_models_that_do_not_export_are_refused_in_one_line(tmp_path):
    las = build(speech({"name": "las", "hidden_size": 8, "num_layers": 1}))
    with pytest.raises(SeqpipeError, match="attention .* do not export"):
        export_onnx(las, tmp_path / "m.onnx")
    classifier = build(KINDS["classifier attention"][0])
    with pytest.raises(SeqpipeError, match="only speech"):
        export_onnx(classifier, tmp_path / "m.onnx", features=True)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "name, n",
    [
        ("rnn_lm gru + attention window", 3),
        ("rnn_lm lstm + lookback", 1),  # one row: the bar memory in Python (RowMemory)
        ("rnn_lm lstm + lookback", 3),
        ("rnn_lm gru + lookback + attention window", 3),
    ],
)
def test_onnx_lm_generates_the_same_melodies_as_torch(name, n, tmp_path):
    from seqpipe.music.generator import generate_melodies
    from seqpipe.music.request import make_request

    pipeline = build(KINDS[name][0])
    export_onnx(pipeline, tmp_path / "lm.onnx")
    request = make_request(n=n, bars=4, seed=5)
    torch_tunes = generate_melodies(pipeline, request)
    onnx_tunes = generate_melodies(pipeline, request, model=OnnxLM(str(tmp_path / "lm.onnx")))
    assert [t.notes for t in onnx_tunes] == [t.notes for t in torch_tunes]
    assert sum(len(t.notes) for t in torch_tunes) > 0


@pytest.mark.parametrize("rows", [1, 2])  # one row: the bar memory in Python (RowMemory)
def test_onnx_lm_steps_like_the_torch_model_through_a_repeating_tune(rows, tmp_path):
    """OnnxLM keeps the bar memory and feeds the graph: logits equal torch's fast step at
    every token while the runs grow, also after reorder_state."""
    pipeline = build(KINDS["rnn_lm lstm + lookback"][0])
    export_onnx(pipeline, tmp_path / "lm.onnx")
    model, onnx_lm = pipeline.model, OnnxLM(str(tmp_path / "lm.onnx"))
    with torch.inference_mode():
        ours, theirs = model.initial_state(rows), onnx_lm.initial_state(rows)
        for t in repeating_tune(pipeline):
            token = torch.full((rows,), t)
            want, ours = model.step(token, ours)
            got, theirs = onnx_lm.step(token, theirs)
            torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)
        assert ours["bars"].runs[:, 0].min() >= 8  # a long repeat: the run inputs mattered
        index = torch.tensor([rows - 1, 0])
        ours, theirs = model.reorder_state(ours, index), onnx_lm.reorder_state(theirs, index)
        token = torch.full((2,), t)
        torch.testing.assert_close(
            onnx_lm.step(token, theirs)[0], model.step(token, ours)[0], atol=TOLERANCE, rtol=0
        )


def test_lookback_step_graph_takes_the_bar_memory_facts_described_in_its_metadata(tmp_path):
    """The extra inputs are named and described, the tables rebuild the model's bar memory,
    and the graph's logits follow them (a repeat run changes the copy score)."""
    from seqpipe.features.melody_form import BarLookback

    pipeline = build(KINDS["rnn_lm lstm + lookback"][0])
    export_onnx(pipeline, tmp_path / "lm.onnx")
    sess = session(str(tmp_path / "lm.onnx"))
    assert [i.name for i in sess.get_inputs()] == [
        "token", "h", "c", "lookback_tokens", "lookback_runs", "bar_position",
    ]  # fmt: skip
    assert [o.name for o in sess.get_outputs()] == ["logits", "h_out", "c_out"]
    tables = read_metadata(tmp_path / "lm.onnx")["lookback"]
    assert tables["distances"] == [1, 2, 4, 8]
    assert set(tables["inputs"]) == {"lookback_tokens", "lookback_runs", "bar_position"}
    ours = BarLookback(
        torch.tensor(tables["token_ticks"]),
        torch.tensor(tables["bar_ticks"]),
        torch.tensor(tables["body_tokens"]),
        tuple(tables["distances"]),
    )
    tokens = repeating_tune(pipeline)
    theirs, mine = pipeline.model.lookback.start(2, "cpu"), ours.start(2, "cpu")
    for t in tokens:
        theirs = pipeline.model.lookback.write(theirs, torch.tensor([t, t]))
        mine = ours.write(mine, torch.tensor([t, t]))
        assert mine.candidates.tolist() == theirs.candidates.tolist()
        assert mine.runs.tolist() == theirs.runs.tolist()
    assert (theirs.candidates >= 0).any() and (theirs.runs > 0).any()
    feed = {
        "token": torch.tensor([tokens[-1]] * 2).numpy(),
        "h": torch.zeros(2, 2, 32).numpy(),
        "c": torch.zeros(2, 2, 32).numpy(),
        "lookback_tokens": theirs.candidates.numpy(),
        "lookback_runs": (theirs.runs * torch.tensor([[1], [0]])).numpy(),  # row 2: no run
        "bar_position": theirs.position.numpy(),
    }
    logits = sess.run(None, feed)[0]
    assert abs(logits[0] - logits[1]).max() > 1e-3


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqpipe", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_cli_generate_with_the_onnx_backend_writes_the_same_midi_file(tmp_path):
    """The shipped folk (lookback inputs): --backend onnx exports its step graph, checks it
    and writes the bytes the torch backend writes for a seed."""
    files = []
    for backend in ("torch", "onnx"):
        files.append(tmp_path / f"{backend}.mid")
        out = run("generate", "-o", str(files[-1]), "--seed", "3", "--backend", backend)
        assert out.returncode == 0, out.stderr
    assert files[0].stat().st_size > 100
    assert files[1].read_bytes() == files[0].read_bytes()


def test_cli_export_and_transcribe_with_the_onnx_backend(tmp_path):
    """The shipped digits bundle: the exported file matches, and --backend onnx prints
    what the torch backend prints for the example."""
    out = run("export", "digits", "-o", str(tmp_path / "digits.onnx"))
    assert out.returncode == 0, out.stderr
    assert "ctc graph" in out.stdout and (tmp_path / "digits.onnx").stat().st_size > 1e6
    example = str(ROOT / "examples" / "seven_three_one.wav")
    texts = [
        run("transcribe", example, "-m", "digits", "--backend", backend, "-q").stdout
        for backend in ("torch", "onnx")
    ]
    assert texts[0].strip() == "seven three one"
    assert texts[1] == texts[0]


def test_without_the_onnx_extra_export_and_the_backend_name_it_in_one_line(tmp_path):
    """With onnx and onnxruntime not importable, both commands fail in one line that says
    what to install, and write nothing."""
    hide = "import sys; sys.modules['onnx'] = sys.modules['onnxruntime'] = None; "
    commands = {
        "seqpipe export": ["export", "digits", "-o", str(tmp_path / "d.onnx")],
        "the onnx backend": ["transcribe", str(ROOT / "examples" / "seven_three_one.wav"),
                             "-m", "digits", "--backend", "onnx"],
    }  # fmt: skip
    for what, args in commands.items():
        out = subprocess.run(
            [sys.executable, "-c", hide + "from seqpipe.cli import main; main()", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 1
        assert out.stderr.splitlines() == [f"Error: {what} needs onnx: pip install 'seqpipe[onnx]'"]
    assert not (tmp_path / "d.onnx").exists()
