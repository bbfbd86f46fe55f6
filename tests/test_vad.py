"""Energy VAD: bounded chunks cut at silences, streamed from disk, with file-global times."""

import numpy as np
import pytest
import soundfile as sf
from transcribe_helpers import SR, tones

from seqpipe.errors import SeqpipeError
from seqpipe.speech.vad import VADOptions, chunks, stream_audio


def test_chunks_follow_the_bursts_and_skip_silence(tmp_path):
    path = tmp_path / "a.wav"
    bursts = [(1.0, 2.0), (4.0, 4.5), (8.0, 9.5)]
    sf.write(path, tones(bursts, 11.0), SR)
    found = list(chunks(path, SR))
    assert len(found) == 3
    for chunk, (start, end) in zip(found, bursts, strict=True):
        assert abs(chunk.start - (start - 0.2)) < 0.02  # 0.2 s of padding before
        assert abs(chunk.start + chunk.duration(SR) - (end + 0.2)) < 0.02


def test_padding_stops_midway_between_close_segments(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tones([(1.0, 2.0), (2.6, 3.5)], 5.0), SR)  # a 0.6 s pause
    first, second = chunks(path, SR, VADOptions(min_silence=0.5, pad_seconds=0.4))
    assert abs(first.start - 0.6) < 0.02  # full padding where nothing is near
    middle = first.start + first.duration(SR)
    assert abs(middle - 2.3) < 0.02 and abs(second.start - middle) < 1e-6  # met, no overlap
    assert abs(second.start + second.duration(SR) - 3.9) < 0.02


def test_long_speech_is_cut_at_the_quietest_point_within_the_bound(tmp_path):
    path = tmp_path / "long.wav"
    # 30 s of bursts separated by 0.3 s gaps (shorter than min_silence): one long "utterance"
    bursts = [(t, t + 2.7) for t in np.arange(0, 30, 3.0)]
    sf.write(path, tones(bursts, 30.0), SR)
    opts = VADOptions(max_seconds=10.0, search_seconds=4.0)
    found = list(chunks(path, SR, opts))
    assert len(found) >= 3
    assert all(c.duration(SR) <= 10.0 + 1e-6 for c in found)
    ends = [c.start + c.duration(SR) for c in found]
    assert all(
        a <= b + 1e-6 for a, b in zip(ends, [c.start for c in found[1:]], strict=False)
    )  # no overlap
    # every cut falls in a gap between bursts, never inside one
    for c in found[1:]:
        assert (c.start % 3.0) > 2.6 or (c.start % 3.0) < 0.05


def test_stereo_48k_is_downmixed_and_resampled_in_blocks(tmp_path):
    path = tmp_path / "s.flac"
    x = tones([(0.5, 1.0)], 3.0, 48000)
    sf.write(path, np.stack([x, x], 1), 48000)
    blocks = list(stream_audio(path, SR, block_seconds=0.5))
    assert len(blocks) >= 6 and max(len(b) for b in blocks) <= 0.6 * SR
    assert abs(sum(len(b) for b in blocks) - 3 * SR) < 32


def test_unreadable_and_empty_files_raise_one_line_errors(tmp_path):
    bad, empty = tmp_path / "bad.wav", tmp_path / "empty.wav"
    bad.write_bytes(b"RIFF not really")
    empty.write_bytes(b"")
    with pytest.raises(SeqpipeError, match=r"bad.wav: cannot read audio"):
        list(chunks(bad, SR))
    with pytest.raises(SeqpipeError, match=r"empty.wav: file is empty"):
        list(chunks(empty, SR))


def test_all_silence_gives_no_chunk(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, tones([], 5.0), SR)
    assert list(chunks(path, SR)) == []
