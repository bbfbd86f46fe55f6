"""Speech/music feature extractors and audio reading: shapes, padding, formats, training-only augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from seqpipe.audio import load_audio
from seqpipe.errors import SeqpipeError
from seqpipe.features.augment import WaveAugment
from seqpipe.features.logmel import LogMel
from seqpipe.features.mfcc import MFCC
from seqpipe.features.specaugment import SpecAugment
from seqpipe.features.vtlp import VocalTractWarp, source_bins

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(3, 8000), torch.tensor([8000, 5000, 3000])


@pytest.mark.parametrize(
    "features,size",
    [
        (LogMel(8000, 40), 40),
        (LogMel(8000, 40, normalize="none"), 40),
        (LogMel(8000, 40, pad_ms=50), 40),
        (MFCC(8000, n_mfcc=13), 39),
        (MFCC(8000, n_mfcc=13, deltas=False), 13),
    ],
)
def test_padding_never_changes_an_utterance(features, size):
    features.eval()
    waves, lengths = batch()
    feats, frames = features(waves, lengths)
    assert feats.shape[0] == 3 and feats.shape[2] == size == features.output_size
    assert frames.tolist() == sorted(frames.tolist(), reverse=True) and frames[0] <= feats.shape[1]
    for b in range(3):
        alone, n = features(waves[b : b + 1, : lengths[b]], lengths[b : b + 1])
        assert int(n) == int(frames[b])
        torch.testing.assert_close(feats[b, : frames[b]], alone[0, : n[0]], atol=1e-5, rtol=1e-5)
        assert feats[b, frames[b] :].abs().sum() == 0  # padding frames are zeros


def test_pad_ms_adds_silence_frames_around_each_utterance():
    plain, padded = LogMel(8000, 20).eval(), LogMel(8000, 20, pad_ms=100).eval()
    waves, lengths = batch()
    _, frames = plain(waves, lengths)
    _, padded_frames = padded(waves, lengths)
    assert (padded_frames - frames).tolist() == [20, 20, 20]  # 2 x 0.1 s at a 10 ms hop
    assert padded.lead_seconds == 0.1


def test_utterance_normalisation_gives_zero_mean_unit_variance():
    feats, frames = LogMel(8000, 40).eval()(*batch())
    real = feats[1, : frames[1]]
    torch.testing.assert_close(real.mean(0), torch.zeros(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(real.std(0, unbiased=False), torch.ones(40), atol=1e-2, rtol=0)


def test_global_normalisation_learns_stats_in_training_and_freezes_them_in_eval():
    features = LogMel(8000, 20, normalize="global")
    assert "norm.count" in features.state_dict()  # buffers: they ship inside bundles
    waves, lengths = batch()
    features.train()
    features(waves, lengths)
    count = float(features.norm.count)
    assert count == float(features.frame_lengths(lengths).sum())
    features.eval()
    feats, frames = features(waves, lengths)
    assert float(features.norm.count) == count  # eval does not update
    real = torch.cat([feats[b, : frames[b]] for b in range(3)])
    torch.testing.assert_close(real.mean(0), torch.zeros(20), atol=1e-3, rtol=0)


def test_spec_augment_masks_only_in_training_and_only_inside_lengths():
    spec = SpecAugment(freq_masks=2, freq_width=5, time_masks=2, time_width=10)
    feats = torch.ones(4, 50, 20)
    lengths = torch.tensor([50, 40, 30, 20])
    spec.eval()
    assert torch.equal(spec(feats, lengths), feats)
    spec.train()
    torch.manual_seed(1)
    out = spec(feats, lengths)
    assert (out == 0).any() and (out == 1).any()
    assert (out[:, :, :] == 0).float().mean() < 0.6


def test_wave_augment_is_identity_in_eval_and_speed_changes_lengths():
    aug = WaveAugment(speeds=(1.1,), noise_snr_db=None, gain_db=None)
    waves, lengths = torch.randn(2, 11000), torch.tensor([11000, 5500])
    aug.eval()
    assert torch.equal(aug(waves, lengths)[0], waves)
    aug.train()
    out, new = aug(waves, lengths)
    assert new.tolist() == [10000, 5000] and out.shape[1] == 10000
    assert out[1, 5000:].abs().sum() == 0


def test_reverb_tail_decays_by_rt60_keeps_loudness_and_leaves_others_dry():
    from seqpipe.features.augment import Reverb

    rate = 8000
    reverb = Reverb(rate, prob=1.0, rt60=(0.4, 0.4), drr_db=(0.0, 0.0))
    torch.manual_seed(0)
    rir = reverb.impulse_responses(64, torch.device("cpu"))
    assert rir.shape == (64, int(0.4 * rate)) and torch.all(rir[:, 0] == 1)
    assert torch.allclose(rir[:, 1:].norm(dim=1), torch.ones(64), atol=1e-5)  # DRR 0 dB
    energy = rir[:, 1:].pow(2).mean(0)
    first, last = energy[:400].mean(), energy[2400:2800].mean()  # windows 0.3 s apart
    decay_db = 10 * torch.log10(first / last)
    assert 42 < decay_db < 48  # 60 dB per 0.4 s -> 45 dB over 0.3 s

    waves = torch.randn(3, 4000)
    out = reverb(waves)
    assert torch.allclose(out.pow(2).mean(1), waves.pow(2).mean(1), rtol=1e-4)
    assert not torch.allclose(out, waves)
    reverb.prob = 0.0
    assert torch.equal(reverb(waves), waves)
    reverb.prob = 1.0
    reverb.eval()
    assert torch.equal(reverb(waves), waves)

    aug = WaveAugment(speeds=(), noise_snr_db=None, gain_db=None, reverb=1.0, sample_rate=rate)
    out, new = aug(waves, torch.tensor([4000, 2000, 1000]))
    assert new.tolist() == [4000, 2000, 1000] and out[1, 2000:].abs().sum() == 0


def test_random_silence_shifts_each_utterance_and_keeps_its_samples():
    from seqpipe.features.augment import random_silence

    waves = torch.arange(1, 11, dtype=torch.float32).repeat(3, 1)
    lengths = torch.tensor([10, 6, 3])
    torch.manual_seed(0)
    out, new = random_silence(waves, lengths, 4)
    for b in range(3):
        real = out[b][out[b] != 0]
        assert real.tolist() == list(range(1, int(lengths[b]) + 1))  # same samples, in order
        last = int(out[b].nonzero().max())
        assert lengths[b] <= new[b] <= lengths[b] + 8 and last < new[b]


def test_vtlp_moves_a_formant_by_each_utterances_factor_and_keeps_the_band_edges():
    alpha = torch.tensor([[0.9], [1.0], [1.1]])
    source = source_bins(alpha, 257)
    assert torch.allclose(source[:, 0], torch.zeros(3)) and torch.allclose(
        source[:, -1], torch.full((3,), 256.0)
    )
    assert (source.diff(dim=1) > 0).all()  # monotonic: no bin is read twice out of order
    power = torch.zeros(3, 257, 4)
    power[:, 100] = 1.0  # a "formant" at bin 100, in every frame of every utterance
    warp = VocalTractWarp(max_warp=0.1)
    torch.manual_seed(0)
    warped = warp(power)
    torch.manual_seed(0)
    expected = 1.0 + 0.1 * (2 * torch.rand(3, 1) - 1)
    peaks = (warped[:, :, 0] * torch.arange(257.0)).sum(1) / warped[:, :, 0].sum(1)
    assert torch.allclose(peaks, 100 * expected[:, 0], atol=0.6)  # the peak moved to f * alpha
    assert len(set(peaks.round().tolist())) == 3  # a factor per utterance, not per batch
    warp.eval()
    assert torch.equal(warp(power), power)
    with pytest.raises(ValueError, match="max_warp"):
        VocalTractWarp(max_warp=1.5)


def test_feature_modules_augment_only_in_training():
    features = LogMel(8000, 20, augment=True, spec_augment=True, vtlp=0.1, reverb=0.5)
    waves, lengths = batch()
    features.eval()
    a, _ = features(waves, lengths)
    b, _ = features(waves, lengths)
    assert torch.equal(a, b)
    features.train()
    torch.manual_seed(0)
    c, _ = features(waves, lengths)
    assert c.shape[2] == 20 and not torch.equal(
        c[:, : a.shape[1]] if c.shape[1] >= a.shape[1] else c, a[:, : c.shape[1]]
    )


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg"])
def test_load_audio_downmixes_and_resamples_48k_stereo(tmp_path, fmt):
    left, right = tone(440, 1.0, 48000), tone(440, 1.0, 48000)
    path = tmp_path / f"stereo.{fmt}"
    try:
        sf.write(str(path), np.stack([left, right], axis=1), 48000)
    except (sf.LibsndfileError, RuntimeError) as exc:  # old libsndfile: no mp3 writer
        pytest.skip(f"libsndfile cannot write {fmt}: {exc}")
    audio = load_audio(path, 16000)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - 16000) < 1200  # mp3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
    peak_hz = spectrum.argmax() * 16000 / 12000
    assert abs(peak_hz - 440) < 5


def test_load_audio_rejects_corrupt_and_empty_files(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(SeqpipeError, match="bad.wav: cannot read audio"):
        load_audio(bad, 16000)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    with pytest.raises(SeqpipeError, match="empty.wav: audio is empty"):
        load_audio(empty, 16000)


@pytest.mark.slow
def test_chroma_and_pyin_find_the_pitch_of_a_tone():
    from seqpipe.features.tonal import CQT, PYIN, Chroma

    rate = 22050
    wave = torch.from_numpy(tone(440.0, 0.6, rate))[None]  # A4 = MIDI 69
    lengths = torch.tensor([wave.shape[1]])
    chroma, frames = Chroma(rate)(wave, lengths)
    assert chroma.shape[2] == 12 and int(chroma[0, : frames[0]].mean(0).argmax()) == 9  # A
    cqt, _ = CQT(rate, n_bins=60)(wave, lengths)
    assert int(cqt[0].mean(0).argmax()) == 69 - 24
    pitch, frames = PYIN(rate)(wave, lengths)
    voiced = pitch[0, : frames[0], 1] > 0.5
    assert voiced.any() and abs(float(pitch[0, voiced, 0].median()) - 69) < 0.5
