"""Acoustic models and the speech task: padding invariance, shapes, losses, bundles, overfitting."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqpipe.errors import SeqpipeError
from seqpipe.models.acoustic import CTCRNN, LAS
from seqpipe.pipeline import Pipeline
from seqpipe.text import VOCAB, encode

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def padded_batch(lengths=(40, 31, 17), size=20):
    torch.manual_seed(0)
    x = torch.randn(len(lengths), max(lengths), size)
    lengths = torch.tensor(lengths)
    for b, n in enumerate(lengths):
        x[b, n:] = 0  # features zero their padding
    return x, lengths


@pytest.mark.parametrize("cell,subsample", [("gru", 4), ("lstm", 2)])
def test_ctc_rnn_shapes_and_padding_invariance(cell, subsample):
    model = CTCRNN(
        20, len(VOCAB), cell=cell, hidden_size=16, num_layers=2, channels=4, subsample=subsample
    ).eval()
    x, lengths = padded_batch()
    logits, out_lengths = model(x, lengths)
    expected = [-(-int(n) // subsample) for n in lengths]  # ceil
    assert out_lengths.tolist() == expected and logits.shape == (3, max(expected), len(VOCAB))
    for b in range(3):
        alone, n = model(x[b : b + 1, : lengths[b]], lengths[b : b + 1])
        torch.testing.assert_close(logits[b, : n[0]], alone[0], atol=1e-5, rtol=1e-4)


def test_las_padding_invariance_for_attention_and_ctc():
    model = LAS(
        20, len(VOCAB), hidden_size=16, num_layers=3, embedding_size=8, decoder_hidden_size=16
    ).eval()
    x, lengths = padded_batch()
    targets = torch.randint(1, len(VOCAB), (3, 6))
    logits = model(x, lengths, targets)
    ctc, ctc_lengths = model(x, lengths)
    assert logits.shape == (3, 6, len(VOCAB))
    assert ctc_lengths.tolist() == [10, 8, 5]  # two pyramid layers halve time twice (ceil)
    for b in range(3):
        one = slice(b, b + 1)
        alone = model(x[one, : lengths[b]], lengths[one], targets[one])
        torch.testing.assert_close(logits[b], alone[0], atol=1e-5, rtol=1e-4)
        alone_ctc, n = model(x[one, : lengths[b]], lengths[one])
        torch.testing.assert_close(ctc[b, : n[0]], alone_ctc[0], atol=1e-5, rtol=1e-4)


def test_las_decode_step_matches_teacher_forcing():
    model = LAS(20, len(VOCAB), hidden_size=16, num_layers=2, decoder_hidden_size=16).eval()
    x, lengths = padded_batch()
    targets = torch.randint(1, len(VOCAB), (3, 4))
    assert_decode_steps_match(model, x, lengths, targets, model(x, lengths, targets))


def assert_decode_steps_match(model, x, lengths, targets, logits):
    """Stepping the decoder one token at a time gives the teacher-forced logits."""
    state = model.encode(x, lengths)
    token = torch.full((x.shape[0],), model.sos_id)
    for u in range(targets.shape[1]):
        step, state = model.decode_step(token, state)
        torch.testing.assert_close(step, logits[:, u], atol=1e-5, rtol=1e-4)
        token = targets[:, u]


def test_ctc_rnn_speller_trains_the_encoder_and_leaves_ctc_inference_unchanged():
    """The speller is an auxiliary head: CTC logits are those of the same weights without
    it, its cross-entropy alone reaches the encoder, and it decodes like LAS."""
    options = dict(hidden_size=16, num_layers=2, channels=4, subsample=2)
    joint = CTCRNN(20, len(VOCAB), speller_size=12, **options).eval()
    plain = CTCRNN(20, len(VOCAB), **options).eval()
    shared = {k: v for k, v in joint.state_dict().items() if not k.startswith("speller.")}
    plain.load_state_dict(shared, strict=True)
    assert joint.joint and not plain.joint
    x, lengths = padded_batch()
    targets = torch.randint(1, len(VOCAB), (3, 5))
    att, ctc, ctc_lengths = joint.forward_joint(x, lengths, targets)
    expected, expected_lengths = plain(x, lengths)
    torch.testing.assert_close(joint(x, lengths)[0], expected)
    torch.testing.assert_close(ctc, expected)
    assert att.shape == (3, 5, len(VOCAB)) and torch.equal(ctc_lengths, expected_lengths)

    torch.nn.functional.cross_entropy(att.transpose(1, 2), targets).backward()
    assert joint.rnn.rnn.weight_ih_l0.grad.abs().sum() > 0  # the encoder learns from spelling
    assert joint.head.weight.grad is None  # the CTC head is not in that loss

    assert_decode_steps_match(joint, x, lengths, targets, att.detach())
    with pytest.raises(ValueError, match="speller_size"):
        plain.forward_joint(x, lengths, targets)


def tiny_config(model: dict, **features) -> dict:
    return {
        "task": {"name": "speech"},
        "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16, **features},
        "model": model,
    }


def speech_batch(tmp_path, texts=("one two", "three")):
    from seqpipe.data.manifest import write_manifest

    rng = np.random.default_rng(0)
    entries = []
    for i, text in enumerate(texts):
        path = tmp_path / f"u{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(4000 + 2000 * i)).astype(np.float32), 8000)
        entries.append({"audio": str(path), "text": text, "duration": (4000 + 2000 * i) / 8000})
    write_manifest(tmp_path / "m.jsonl", entries)
    return entries


@pytest.mark.parametrize(
    "model",
    [
        {"name": "ctc_rnn", "hidden_size": 16, "num_layers": 1, "channels": 4},
        {"name": "ctc_rnn", "hidden_size": 16, "num_layers": 1, "speller_size": 8},
        {"name": "las", "hidden_size": 16, "num_layers": 2, "decoder_hidden_size": 16},
        {"name": "ctc_ensemble", "member": {"name": "ctc_rnn", "hidden_size": 8, "channels": 4}},
    ],
)
def test_speech_task_loss_evaluate_and_bundle(tmp_path, model):
    pipeline = Pipeline.from_config(tiny_config(model, normalize="global"))
    task = pipeline.task
    data = task.load_data(str(tmp_path / "m.jsonl") if speech_batch(tmp_path) else None, train=True)
    assert [e["text"] for e in data] == ["one two", "three"] and task.length(data[1]) == 75
    batch = task.collate(data)
    assert batch["waves"].shape == (2, 6000) and batch["lengths"].tolist() == [4000, 6000]
    assert batch["targets"][0, : batch["target_lengths"][0]].tolist() == encode("one two")
    pipeline.train()
    loss, n = task.loss(pipeline, batch)
    loss.backward()
    assert n == 2 and torch.isfinite(loss) and loss > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pipeline.model.parameters())
    speller = getattr(pipeline.model, "speller", None)  # joint models train it too
    assert speller is None or all(p.grad is not None for p in speller.parameters())
    pipeline.eval()
    metrics = task.evaluate(pipeline, [batch])
    assert set(metrics) >= {"wer", "cer", "loss"} and metrics["cer"] >= 0
    path = pipeline.save(tmp_path / "b.safetensors")
    loaded = Pipeline.load(path)
    assert loaded.bundle_metadata["info"]["sample_rate"] == 8000
    assert loaded.bundle_metadata["info"]["vocabulary"] == VOCAB
    assert float(loaded.features.norm.count) == float(pipeline.features.norm.count) > 0
    torch.testing.assert_close(task.evaluate(loaded, [batch])["loss"], metrics["loss"])


def test_init_from_a_ctc_bundle_adds_a_fresh_speller_and_refuses_other_models(tmp_path):
    from seqpipe.errors import SeqpipeError
    from seqpipe.training.run import init_weights

    model = {"name": "ctc_rnn", "hidden_size": 8, "num_layers": 1, "channels": 4}
    plain = Pipeline.from_config(tiny_config(model))
    path = plain.save(tmp_path / "plain.safetensors")
    joint = Pipeline.from_config(tiny_config({**model, "speller_size": 8}))
    speller = {k: v.clone() for k, v in joint.model.speller.state_dict().items()}
    assert init_weights(joint, str(path)) == ["speller"]
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(joint.state_dict()[key], value, rtol=0, atol=0)
    for key, value in joint.model.speller.state_dict().items():
        torch.testing.assert_close(value, speller[key], rtol=0, atol=0)  # untouched
    las = Pipeline.from_config(tiny_config({"name": "las", "hidden_size": 8, "num_layers": 1}))
    with pytest.raises(SeqpipeError, match="weights do not fit"):
        init_weights(las, str(path))  # nothing in common: refused, not silently fresh


def test_load_data_drops_empty_and_too_long_utterances_in_training_only(tmp_path):
    pipeline = Pipeline.from_config(
        tiny_config({"name": "ctc_rnn", "hidden_size": 8, "num_layers": 1})
    )
    speech_batch(tmp_path, texts=("ok", "!!!", "fine"))
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(pipeline.task.load_data(str(tmp_path / "m.jsonl"), train=True)) == 2
    assert len(pipeline.task.load_data(str(tmp_path / "m.jsonl"), train=False)) == len(lines)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.slow
def test_tiny_ctc_model_overfits_two_espeak_utterances():
    from seqpipe.audio import to_mono_rate
    from seqpipe.data.synth import Voice, synthesize

    torch.manual_seed(0)
    pipeline = Pipeline.from_config(
        tiny_config(
            {
                "name": "ctc_rnn",
                "hidden_size": 32,
                "num_layers": 1,
                "channels": 4,
                "subsample": 2,
                "dropout": 0.0,
            }
        )  # fmt: skip
    )
    texts = ["yes", "no"]
    waves = [
        torch.from_numpy(to_mono_rate(*synthesize(t, Voice("espeak-ng", "en-us")), 8000))
        for t in texts
    ]
    batch = {
        "waves": torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
        "lengths": torch.tensor([len(w) for w in waves]),
        "targets": torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(encode(t)) for t in texts], batch_first=True, padding_value=-1
        ),
        "target_lengths": torch.tensor([len(encode(t)) for t in texts]),
    }
    optimizer = torch.optim.Adam(pipeline.parameters(), lr=2e-2)
    metrics = overfit(pipeline, batch, optimizer)
    assert metrics["wer"] == 0 and metrics["loss"] < metrics["first"] / 5


def overfit(pipeline, batch, optimizer) -> dict:
    first = None
    for step in range(300):
        pipeline.train()
        loss, _ = pipeline.task.loss(pipeline, batch)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            pipeline.eval()
            metrics = pipeline.task.evaluate(pipeline, [batch])
            if metrics["wer"] == 0:
                break
    return {**metrics, "first": first}


SPEECH_RECIPES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "configs" / "speech").glob("*.yaml")
)


@pytest.mark.parametrize("recipe", SPEECH_RECIPES)
def test_speech_recipes_build(recipe):
    from seqpipe.config import load_config

    assert {"digits", "en-small"} <= set(SPEECH_RECIPES)
    path = Path(__file__).resolve().parents[1] / "configs" / "speech" / f"{recipe}.yaml"
    pipeline = Pipeline.from_config(load_config(path))
    assert pipeline.config["task"]["name"] == "speech"
    params = sum(p.numel() for p in pipeline.parameters())
    assert params * 4 < 32e6  # bundles stay small: en-small-real3 (3 x BiGRU 384) is 29.4 MB


def test_ctc_ensemble_decodes_the_mean_of_its_members_posteriors():
    """Each member is the model it was built as; the output is log(mean(softmax)) over them."""
    member = {"name": "ctc_rnn", "hidden_size": 8, "num_layers": 1, "channels": 4}
    torch.manual_seed(0)
    ensemble = Pipeline.from_config(
        tiny_config({"name": "ctc_ensemble", "size": 3, "member": member})
    )
    assert ensemble.config["model"]["size"] == 3 and len(ensemble.model.members) == 3
    x, lengths = padded_batch(size=16)
    with torch.no_grad():
        log_probs, out_lengths = ensemble.model.eval()(x, lengths)
        members = [torch.softmax(m(x, lengths)[0], -1) for m in ensemble.model.members]
        lone, lone_lengths = ensemble.model(x[2:, :17], lengths[2:])
    assert not torch.allclose(members[0], members[1])  # members start apart: the mean is no copy
    torch.testing.assert_close(log_probs.exp(), torch.stack(members).mean(0))
    assert out_lengths.tolist() == [10, 8, 5] and lone_lengths.tolist() == [5]
    torch.testing.assert_close(lone[0, :5], log_probs[2, :5])  # padding never leaks in

    with pytest.raises(SeqpipeError, match="model.size: expected"):
        Pipeline.from_config(tiny_config({"name": "ctc_ensemble", "size": 1, "member": member}))
    with pytest.raises(SeqpipeError, match="ctc_ensemble member: model.hidden_size: expected"):
        bad = {**member, "hidden_size": "wide"}
        Pipeline.from_config(tiny_config({"name": "ctc_ensemble", "member": bad}))
