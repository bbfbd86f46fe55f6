"""Transcribe audio files of any length with a speech bundle: the engine of the speech service.

Every input file is streamed through the VAD (:mod:`seqpipe.speech.vad`) into chunks of at
most ``max_seconds``; chunks from all files share length-bucketed batches (a window of
chunks is sorted by length, so padding is small and many short files fill a batch as
well as one long file does). Word times come from CTC forced alignment and are
shifted by the chunk's start, so they are global to the file. A file that fails to
read costs its own result only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from seqpipe.errors import ParameterError, SeqpipeError
from seqpipe.speech.files import Input, Result
from seqpipe.speech.formats import Segment, Transcript
from seqpipe.speech.hotwords import hotword_list
from seqpipe.speech.vad import Chunk, VADOptions, chunks

MIN_SECONDS = 0.2
PEAK_DB = -20.0  # every chunk reaches the features at this peak level


def leveled(samples: np.ndarray, peak_db: float = PEAK_DB) -> np.ndarray:
    """``samples`` scaled to a peak of ``peak_db`` dBFS: log-mel features have an absolute
    floor, so the same speech recorded louder or quieter would otherwise reach the model
    as different features."""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return samples * np.float32(10 ** (peak_db / 20) / peak) if peak > 0 else samples


class Transcriber:
    """A loaded speech bundle plus decoding options; call :meth:`run` on inputs."""

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        beam_size: int | None = None,
        lm: str | None = None,
        lm_weight: float | None = None,
        vad: VADOptions | None = None,
        pipeline=None,
        hotwords: str | None = None,
        words: str | None = None,
        hotword_boost: float | None = None,
        backend: str = "torch",
        compute_type: str = "auto",
    ):
        """``model``: a bundle name or path (default: :func:`default_model`), or a loaded
        ``pipeline``. CPU threads: :func:`seqpipe.device.threads` around the calls.
        ``hotwords``/``words``: domain words added to the beam search's lexicon and LM
        (:mod:`seqpipe.speech.hotwords`), ``hotword_boost`` (log10) their weight.
        ``backend`` ``onnx``: the acoustic model runs on onnxruntime (exported and checked
        against PyTorch on load, :func:`seqpipe.deploy.runtime.onnx_model`); features and
        decoder stay the same. ``compute_type``: ``auto`` (int8 on the CPU), ``float32`` or
        ``int8`` (:mod:`seqpipe.deploy.quantize`; the torch backend only)."""
        from seqpipe.device import pick_device
        from seqpipe.pipeline import Pipeline

        self.device = pick_device(device) if pipeline is None else pipeline.device
        model = model or default_model()
        self.pipeline = pipeline if pipeline is not None else Pipeline.load(model, self.device)
        self.pipeline.eval()
        check_speech_model(self.pipeline, model)
        self.model_name = model if pipeline is None else str(pipeline.config.get("name", ""))
        self.batch_size = batch_size
        self.vad = vad or VADOptions()
        self.sample_rate = self.pipeline.sample_rate
        self.feature_seconds = self.pipeline.frame_seconds
        # features that pad the signal put frame 0 this long before the audio starts
        self.lead_seconds = self.pipeline.lead_seconds
        self.decoder = choose_decoder(self.pipeline, beam_size, lm, lm_weight)
        added = hotword_list(hotwords, words)
        if added:
            self.decoder = with_hotwords(self.decoder, added, hotword_boost)
        if backend == "onnx":
            from seqpipe.deploy.runtime import onnx_model

            if compute_type == "int8":
                raise ParameterError("compute_type", "int8 runs on the torch backend", "int8")
            self.model = onnx_model(self.pipeline)
        else:
            from seqpipe.deploy.quantize import for_compute_type

            self.model = for_compute_type(self.pipeline, compute_type)
        self.text = self.decoder.text

    # -- batching ------------------------------------------------------------------

    def _chunk_stream(
        self, inputs: list[Input], failed: dict[int, str], warned: dict[int, list[str]]
    ) -> Iterator[tuple[int, Chunk | None]]:
        """(file index, chunk) in file order; (index, None) closes a file. Errors go to
        ``failed``, warnings (repaired samples, a cut-short file) to ``warned``."""
        for i, item in enumerate(inputs):
            if item.error:
                failed[i] = item.error
            else:
                try:
                    warn = warned.setdefault(i, []).append
                    for chunk in chunks(item.path, self.sample_rate, self.vad, warn=warn):
                        yield i, chunk
                except SeqpipeError as exc:
                    failed[i] = (
                        str(exc).split(": ", 1)[-1] if str(exc).startswith(item.path) else str(exc)
                    )
                except Exception as exc:  # a decoder library failing on a broken file
                    failed[i] = f"cannot read audio: {type(exc).__name__}: {exc}"
            yield i, None

    def run(
        self, inputs: list[Input], progress: Callable[[int, float], None] | None = None
    ) -> Iterator[Result]:
        """Transcribe ``inputs``; yields one Result per input, in input order.

        ``progress(file_index, seconds_done)`` is called as chunks finish.
        """
        failed: dict[int, str] = {}
        warned: dict[int, list[str]] = {}
        segments: dict[int, list[Segment]] = {i: [] for i in range(len(inputs))}
        pending: dict[int, int] = {}
        closed: set[int] = set()
        next_out = 0
        window: list[tuple[int, Chunk]] = []
        max_window = self.batch_size * 4
        # a window holds about one batch of the longest chunks, or many short ones
        max_seconds = max(300.0, self.batch_size * self.vad.max_seconds)
        window_seconds = 0.0
        stream = self._chunk_stream(inputs, failed, warned)
        exhausted = False
        while not exhausted or window:
            while not exhausted and len(window) < max_window and window_seconds < max_seconds:
                item = next(stream, None)
                if item is None:
                    exhausted = True
                elif item[1] is None:
                    closed.add(item[0])
                else:
                    window.append(item)
                    pending[item[0]] = pending.get(item[0], 0) + 1
                    window_seconds += item[1].duration(self.sample_rate)
            window.sort(key=lambda x: len(x[1].samples))
            for b in range(0, len(window), self.batch_size):
                batch = [(i, c) for i, c in window[b : b + self.batch_size] if i not in failed]
                if batch:
                    for (i, chunk), segment in zip(
                        batch, self._decode([c for _, c in batch]), strict=False
                    ):
                        segments[i].append(segment)
                        if progress:
                            progress(i, chunk.start + chunk.duration(self.sample_rate))
                for i, _ in window[b : b + self.batch_size]:
                    pending[i] -= 1
            window, window_seconds = [], 0.0
            while next_out < len(inputs) and next_out in closed and not pending.get(next_out):
                result = self._result(
                    inputs[next_out], segments.pop(next_out), failed.get(next_out)
                )
                result.warnings = warned.pop(next_out, [])
                yield result
                next_out += 1

    def _result(self, item: Input, segments: list[Segment], error: str | None) -> Result:
        if error:
            return Result(item, error=error)
        from seqpipe.audio import audio_duration

        segments.sort(key=lambda s: s.start)
        duration = item.duration if item.duration is not None else audio_duration(item.path)
        return Result(item, Transcript(item.path, duration, segments, self.model_name))

    @torch.inference_mode()
    def _decode(self, batch: list[Chunk]) -> list[Segment]:
        from seqpipe.speech.alignment import word_timings

        # a blip shorter than one analysis window is zero-padded to MIN_SECONDS
        shortest = int(MIN_SECONDS * self.sample_rate)
        lengths = torch.tensor([max(shortest, len(c.samples)) for c in batch])
        waves = torch.zeros(len(batch), int(lengths.max()))
        for row, c in enumerate(batch):
            waves[row, : len(c.samples)] = torch.from_numpy(leveled(c.samples))
        feats, feat_lengths = self.pipeline.features(waves.to(self.device), lengths.to(self.device))
        out = self.decoder.decode_batch(self.model, feats, feat_lengths)
        frame_seconds = self.feature_seconds * out.frame_ratio
        result = []
        for row, (c, hyp) in enumerate(zip(batch, out.hypotheses, strict=False)):
            end = c.start + c.duration(self.sample_rate)
            log_probs = None
            if out.log_probs is not None:
                log_probs = out.log_probs[row, : int(out.lengths[row])]
            words = word_timings(
                hyp,
                self.text,
                log_probs,
                frame_seconds,
                offset=c.start - self.lead_seconds,
                limit=end,
                floor=c.start,
            )
            result.append(Segment(c.start, end, hyp.text, words))
        return result


# The default model: the first of these that is bundled.
DEFAULT_MODELS = ("en-small", "digits")


def default_model() -> str:
    from seqpipe.plugins import registry

    bundled = registry().names("bundle")
    return next((name for name in DEFAULT_MODELS if name in bundled), DEFAULT_MODELS[0])


def check_speech_model(pipeline, model: str | None) -> None:
    """A SeqpipeError unless ``pipeline`` turns audio into text (``-m folk`` does not)."""
    if pipeline.labels is None or pipeline.sample_rate is None:
        task = pipeline.config.get("task", {}).get("name", "?")
        raise SeqpipeError(
            f"{model or 'model'}: not a speech model (its task is '{task}'); "
            "seqpipe transcribe needs a speech-to-text bundle such as en-small or digits"
        )


def choose_decoder(pipeline, beam_size: int | None, lm: str | None, lm_weight: float | None):
    """The bundle's decoder (``lm_weight`` applied to its beam search), or a beam search
    when ``beam_size``/``lm`` ask for one."""
    from seqpipe.decoders.attention_beam import AttentionBeam
    from seqpipe.decoders.base import FrameDecoder
    from seqpipe.decoders.ctc_beam import CTCBeam
    from seqpipe.decoders.ctc_greedy import CTCGreedy

    vocab, blank = pipeline.labels, pipeline.blank
    decoder = pipeline.decoder if isinstance(pipeline.decoder, FrameDecoder) else None
    if isinstance(decoder, AttentionBeam) and beam_size and not lm:
        decoder.beam_size = beam_size
        return decoder
    if isinstance(decoder, CTCBeam) and lm_weight is not None and not (beam_size or lm):
        decoder.set_options(lm_weight=lm_weight)  # the bundle's own search, reweighted
        return decoder
    if beam_size or lm:
        options = dict(pipeline.config.get("decoder") or {}) if isinstance(decoder, CTCBeam) else {}
        options.pop("name", None)
        options.update(beam_size=beam_size or options.get("beam_size", 50))
        if lm:
            options.update(lm=lm, lexicon=None)
        if lm_weight is not None:
            options["lm_weight"] = lm_weight
        return CTCBeam(vocab, blank, **options)
    return decoder or CTCGreedy(vocab, blank)


def with_hotwords(decoder, words: list[str], boost: float | None = None):
    """``decoder`` (a ``ctc_beam`` with an LM or lexicon) with ``words`` added to both;
    the LM and lexicon are read once here, from a temporary copy."""
    import copy
    import tempfile
    from pathlib import Path

    from seqpipe.decoders.ctc_beam import CTCBeam
    from seqpipe.speech.hotwords import BOOST, boosted_lm

    if not isinstance(decoder, CTCBeam) or (decoder.lm_path is None and not decoder.lexicon_path):
        raise ParameterError(
            "hotwords",
            "need a beam search with words: add {lm} (an ARPA file) or {beam_size}"
            " with a bundle whose decoder has an LM or lexicon",
        )
    decoder = copy.copy(decoder)  # a loaded pipeline's own decoder stays as it was
    with tempfile.TemporaryDirectory(prefix="seqpipe-hotwords-") as tmp:
        lm, lexicon = boosted_lm(
            decoder.lm_path, decoder.lexicon_path, words, Path(tmp),
            BOOST if boost is None else boost,
        )  # fmt: skip
        decoder.lm_path, decoder.lexicon_path = lm, lexicon
        decoder.load()
    return decoder
