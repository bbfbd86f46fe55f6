"""Live transcription: the chunked model, the decoders' live searches, ``seqpipe.stream`` and
``seqpipe transcribe --stream``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO
from seqpipe.decoders.ctc_beam import CTCBeam
from seqpipe.decoders.ctc_greedy import CTCGreedy
from seqpipe.errors import SeqpipeError
from seqpipe.models.acoustic import CTCRNN
from seqpipe.text import VOCAB

EXAMPLE = REPO / "examples" / "seven_three_one.wav"
INDEX = {c: i for i, c in enumerate(VOCAB)}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def chunked(model, x, chunk, lookahead):
    """The model's stream_step over ``x`` in chunks, each seeing ``lookahead`` frames
    after it (None: to the end of the utterance)."""
    outs, state, fed = [], None, 0
    while fed < x.shape[1]:
        new = min(chunk, x.shape[1] - fed)
        ahead = (
            x.shape[1] - fed - new if lookahead is None else min(lookahead, x.shape[1] - fed - new)
        )
        logits, state = model.stream_step(x[:, fed : fed + new + ahead], ahead, state)
        outs.append(logits)
        fed += new
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("cell,subsample", [("gru", 2), ("lstm", 4), ("rnn", 2)])
def test_chunks_with_lookahead_to_the_end_give_the_offline_posteriors(cell, subsample):
    torch.manual_seed(0)
    model = CTCRNN(
        20, len(VOCAB), cell=cell, hidden_size=16, num_layers=3, channels=4, subsample=subsample
    ).eval()
    x = torch.randn(2, 45, 20)  # 45: the last chunk is not a multiple of the stride
    offline, lengths = model(x, torch.tensor([45, 45]))
    streamed = chunked(model, x, chunk=4 * subsample, lookahead=None)
    assert streamed.shape == offline.shape
    torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=1e-5)


def test_a_short_lookahead_changes_only_what_the_backward_direction_sees():
    torch.manual_seed(0)
    model = CTCRNN(20, len(VOCAB), hidden_size=16, num_layers=1, channels=4, subsample=2).eval()
    x = torch.randn(1, 40, 20)
    offline, _ = model(x, torch.tensor([40]))
    short = chunked(model, x, chunk=8, lookahead=4)
    assert short.shape == offline.shape
    # one layer: the forward direction is exact, and the last chunk's backward one sees
    # to the end; earlier chunks lose their far future
    torch.testing.assert_close(short[:, -4:], offline[:, -4:], atol=1e-5, rtol=1e-5)
    assert (short[:, :-4] - offline[:, :-4]).abs().max() > 1e-3
    # a whole utterance as one chunk is the offline model
    torch.testing.assert_close(chunked(model, x, 40, 0), offline, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_chunk_aware_training_sees_what_streaming_sees(cell):
    """``chunked`` (a padded batch at once, for training) equals ``chunk_run`` chunk by
    chunk (one layer; deeper ones differ only in the look-ahead frames' inputs)."""
    from seqpipe.models.rnn import RecurrentStack

    torch.manual_seed(0)
    core = RecurrentStack(cell, 6, 8, num_layers=1, bidirectional=True).eval()
    lengths = torch.tensor([23, 17, 5])
    x = torch.randn(3, 23, 6) * (torch.arange(23)[None, :, None] < lengths[:, None, None])
    batch = core.chunked(x, lengths, chunk=4, lookahead=3)
    for b, n in enumerate(lengths.tolist()):
        outs, state, fed = [], None, 0
        while fed < n:
            keep = min(4, n - fed)
            y, state = core.chunk_run(x[b : b + 1, fed : min(n, fed + 7)], keep, state)
            outs.append(y[:, :keep])
            fed += keep
        torch.testing.assert_close(batch[b : b + 1, :n], torch.cat(outs, 1), atol=1e-5, rtol=1e-5)
        assert not batch[b, n:].any()
    model = CTCRNN(20, len(VOCAB), hidden_size=8, num_layers=1, channels=4, train_chunk=4).train()
    loss = model(torch.randn(2, 30, 20), torch.tensor([30, 21]))[0].sum()
    loss.backward()  # trains through it
    assert model.rnn.rnn.weight_hh_l0_reverse.grad.abs().sum() > 0


def test_chunk_share_mixes_whole_and_chunked_batches_and_draws_the_lookahead():
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 40, 20), torch.tensor([40, 31])
    model = CTCRNN(20, len(VOCAB), hidden_size=8, num_layers=1, channels=4, dropout=0.0)
    whole = model.train()(x, lengths)[0]
    torch.testing.assert_close(whole, model.eval()(x, lengths)[0])
    model.train_chunk, model.train_lookahead = 4, (0, 3)
    model.train()
    seen = set()
    for share in (0.0, 1.0):
        model.train_chunk_share = share
        for _ in range(12):
            logits = model(x, lengths)[0]
            same = torch.allclose(logits, whole, atol=1e-6)
            assert same == (share == 0.0)  # chunked: the backward direction is cut off
            if share:
                seen.add(tuple(logits[0, :, 0].tolist()))
    assert len(seen) > 1  # several look-aheads were drawn
    with pytest.raises(SeqpipeError, match="train_lookahead"):
        CTCRNN(20, len(VOCAB), hidden_size=8, num_layers=1, channels=4, train_lookahead=(5, 2))


def test_a_core_without_chunk_run_cannot_stream():
    model = CTCRNN(20, len(VOCAB), hidden_size=8, num_layers=1, channels=4).eval()
    model.rnn.chunk_run = None
    with pytest.raises(SeqpipeError, match="cannot stream"):
        model.stream_step(torch.randn(1, 8, 20), 0)


def posteriors(path: str) -> torch.Tensor:
    """[T, V] log-probs sure of path[t] at frame t ('_' = blank)."""
    logits = torch.full((len(path), len(VOCAB)), -10.0)
    for t, c in enumerate(path):
        logits[t, 0 if c == "_" else INDEX[c]] = 0.0
    return logits.log_softmax(-1)


SPOKEN = "__hh_e_ll_lo__ _ww_o_rr_ld__ _th_e__ _b_i_g__ __w_o_rr_ld___"


def feed(search, lp, chunk):
    """Feed ``lp`` in chunks; the words final after each, then the rest."""
    final = []
    for i in range(0, len(lp), chunk):
        search.step(lp[i : i + chunk])
        final.append(search.settle())
    return final, search.end()


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "words.lexicon"
    path.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in ["hello", "world", "the", "big"]))
    return path


@pytest.mark.parametrize("kind", ["greedy", "beam", "lexicon"])
def test_live_searches_make_words_final_early_and_agree_with_offline(kind, lexicon):
    lp = posteriors(SPOKEN)
    if kind == "greedy":
        decoder = CTCGreedy(VOCAB, 0)
        search = decoder.stream()
    else:
        decoder = CTCBeam(
            VOCAB, 0, beam_size=8, lexicon=str(lexicon) if kind == "lexicon" else None
        )
        search = decoder.stream(settle_frames=2)
    offline = decoder(lp[None])[0].text
    assert offline == "hello world the big world"
    during, rest = feed(search, lp, chunk=6)
    words = [w for step in during for w in step] + rest
    assert " ".join(words) == offline
    # "hello" is spoken in the first 14 frames: final well before the end
    first_final = next(i for i, step in enumerate(during) if step)
    assert first_final <= 3 and during[first_final][0] == "hello"


def test_pending_words_show_what_is_not_final_yet():
    search = CTCBeam(VOCAB, 0, beam_size=8).stream(settle_frames=100)  # nothing settles
    search.step(posteriors("__hh_e_ll_lo__ _ww_o_rr"))
    assert search.settle() == []
    assert search.pending() == ["hello", "wor"]
    search.step(posteriors("_ld__"))
    assert search.end() == ["hello", "world"]


def test_when_no_path_agrees_with_the_final_words_the_best_path_continues_them(lexicon):
    """The fallback of a live search whose agreeing paths all left the beam."""
    from types import SimpleNamespace

    from seqpipe.decoders.ctc_beam import BeamStream

    decoder = CTCBeam(VOCAB, 0, beam_size=8, lexicon=str(lexicon))
    decoder.stream()  # loads the lexicon
    index = decoder._resources.words.get_index

    class Search:  # what flashlight's decoder answers at the end
        def __init__(self, *words):
            self.path = SimpleNamespace(
                words=[-1, *map(index, words)], tokens=[0] * (1 + len(words))
            )

        def decode_begin(self):
            pass

        def decode_end(self):
            pass

        def get_all_final_hypothesis(self):
            return [self.path]

        def get_best_hypothesis(self, look_back=0):
            return self.path

    for best, rest in [
        (("hello", "world", "big"), ["world", "big"]),
        (("the", "big"), ["the", "big"]),
    ]:
        search = BeamStream(decoder, Search(*best), None)
        search.final, search.final_ids = ["hello"], [index("hello")]
        assert search.end() == rest


# -- the service, the API and the CLI on the shipped models ---------------------------------


def blocks(samples, rate, seconds=0.1):
    step = int(rate * seconds)
    return [samples[i : i + step] for i in range(0, len(samples), step)]


@pytest.mark.parametrize("model", ["digits", "en-small"])
def test_stream_api_gives_the_offline_words_with_partials_first(model):
    import seqpipe

    samples, rate = sf.read(EXAMPLE, dtype="float32")
    pipeline = seqpipe.load(model, "cpu")
    offline = str(seqpipe.transcribe(EXAMPLE, pipeline))
    updates = list(seqpipe.stream(blocks(samples, rate), pipeline, sample_rate=rate))
    finals = [u for u in updates if u.final]
    assert offline == "seven three one"
    assert [u.text for u in finals] == [offline]
    partials = [u for u in updates if not u.final]
    assert partials and partials[0].time < finals[0].time  # words shown before the end
    assert all(u.time <= len(samples) / rate + 1e-6 for u in updates)
    settled = [w for u in updates for w in u.settled]
    assert settled == offline.split()  # each word final exactly once


def test_a_model_that_cannot_stream_says_so():
    import seqpipe
    from seqpipe.pipeline import Pipeline

    member = {"name": "ctc_rnn", "hidden_size": 8, "num_layers": 1, "channels": 4}
    config = {
        "task": {"name": "speech"},
        "features": {"name": "logmel", "sample_rate": 16000, "n_mels": 20},
        "model": {"name": "ctc_ensemble", "member": member},
    }
    pipeline = Pipeline.from_config(config).eval()
    with pytest.raises(SeqpipeError, match="cannot stream: 'ctc_ensemble' models"):
        next(seqpipe.stream([np.zeros(1600, np.float32)], pipeline))


def pipe_in_100ms_pieces(data: bytes, *args: str) -> tuple[int, str, str]:
    """``seqpipe transcribe --stream - ARGS`` with ``data`` written to its stdin 100 ms of
    16 kHz 16-bit audio at a time, as a recorder would: (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqpipe", "transcribe", "--stream", "-", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for i in range(0, len(data), 3200):
        proc.stdin.buffer.write(data[i : i + 3200])
        proc.stdin.flush()
        time.sleep(0.002)
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    return proc.wait(timeout=120), out, err


def example_pcm() -> np.ndarray:
    import soxr

    samples, rate = sf.read(EXAMPLE, dtype="float32")
    return (soxr.resample(samples, rate, 16000) * 32767).astype("<i2")


def test_cli_streams_a_wav_on_stdin_in_100ms_pieces_and_prints_the_offline_words(tmp_path):
    wav = tmp_path / "x.wav"
    sf.write(wav, example_pcm(), 16000, subtype="PCM_16")
    code, out, err = pipe_in_100ms_pieces(wav.read_bytes(), "--threads", "1")  # en-small
    assert code == 0, err
    assert out.splitlines() == ["seven three one"]  # the offline words (the API test above)


def cli(*args):
    from click.testing import CliRunner

    from seqpipe.cli import build_cli

    return CliRunner().invoke(build_cli(), ["transcribe", *map(str, args)])


@pytest.mark.parametrize("header", [True, False])
def test_stdin_reader_takes_raw_pcm_and_wav_from_a_pipe(header, tmp_path):
    import threading

    from seqpipe.speech.streaming import stdin_blocks

    pcm = example_pcm()
    wav = tmp_path / "x.wav"
    sf.write(wav, pcm, 16000, subtype="PCM_16")
    data = wav.read_bytes() if header else pcm.tobytes()
    read_end, write_end = os.pipe()

    def writer():
        for i in range(0, len(data), 3200):
            os.write(write_end, data[i : i + 3200])
        os.close(write_end)

    threading.Thread(target=writer, daemon=True).start()
    with os.fdopen(read_end, "rb") as source:
        got = list(stdin_blocks(16000, source))
    assert all(len(b) == 1600 for b in got[:-1])
    np.testing.assert_allclose(np.concatenate(got), pcm / 32768, atol=1e-4)


def test_broken_stdin_and_bad_arguments_are_one_line_errors(tmp_path):
    from seqpipe.speech.streaming import stdin_blocks

    read_end, write_end = os.pipe()
    os.write(write_end, EXAMPLE.read_bytes()[:20])  # a WAV header cut short
    os.close(write_end)
    with (
        pytest.raises(SeqpipeError, match="<stdin>: cannot read audio"),
        os.fdopen(read_end, "rb") as source,
    ):
        list(stdin_blocks(16000, source))
    two = cli("--stream", EXAMPLE, EXAMPLE)
    assert two.exit_code != 0 and "one source" in two.output
    missing = cli("--stream", tmp_path / "nope.wav")
    assert missing.exit_code != 0 and "no such file" in missing.output
    assert cli("--stream", EXAMPLE, "-f", "json").exit_code != 0


def test_microphone_without_sounddevice_names_the_extra(monkeypatch):
    from seqpipe.speech.streaming import microphone

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    with pytest.raises(SeqpipeError, match=r"seqpipe\[mic\]"):
        next(microphone(16000))


def test_microphone_blocks_come_from_sounddevice_callbacks(monkeypatch):
    """A stand-in sounddevice: the stream's callback gets (frames, 1) blocks."""
    import types

    from seqpipe.speech.streaming import microphone

    opened = {}

    class InputStream:
        def __init__(self, samplerate, channels, dtype, device, blocksize, callback):
            opened.update(samplerate=samplerate, channels=channels, blocksize=blocksize)
            self.callback = callback

        def __enter__(self):
            for k in range(3):
                self.callback(np.full((opened["blocksize"], 1), k, np.float32), 0, None, None)
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(InputStream=InputStream))
    source = microphone(16000)
    got = [next(source) for _ in range(3)]
    source.close()
    assert opened == {"samplerate": 16000, "channels": 1, "blocksize": 1600}
    assert [b.shape for b in got] == [(1600,)] * 3 and [b[0] for b in got] == [0, 1, 2]


def test_file_stream_matches_offline_over_several_segments(tmp_path):
    """Two utterances with a pause between them: two final lines, each the offline words."""
    import seqpipe

    samples, rate = sf.read(EXAMPLE, dtype="float32")
    pause = np.zeros(int(1.2 * rate), np.float32)
    both = tmp_path / "twice.wav"
    sf.write(both, np.concatenate([samples, pause, samples]), rate)
    result = cli("--stream", both, "-m", "digits", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["seven three one"] * 2
    assert str(seqpipe.transcribe(both, "digits", threads=1)) == "seven three one seven three one"


def test_stream_options_are_checked():
    from seqpipe.errors import ParameterError
    from seqpipe.speech.streaming import transcribe_stream

    with pytest.raises(ParameterError, match="chunk"):
        transcribe_stream(str(EXAMPLE), chunk=0, model="digits")
    with pytest.raises(ParameterError, match="by level"):
        transcribe_stream(str(EXAMPLE), vad="silero", model="digits")
