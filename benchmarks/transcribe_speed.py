"""Transcription speed and memory: RTF per model (batch 1 and batched), peak memory on
a long input, and feature-extraction throughput (torchaudio CPU/GPU vs librosa).

    nice python benchmarks/transcribe_speed.py                    # every bundled model
    nice python benchmarks/transcribe_speed.py --model runs/x.safetensors --long-minutes 60
    nice python benchmarks/transcribe_speed.py --model en-small --audio speech.wav --long-minutes 0
    nice python benchmarks/transcribe_speed.py --model en-small --audio data/en-small/test_tts.jsonl
    nice python benchmarks/transcribe_speed.py --model en-small --audio ... --beam-size 100

RTF = processing seconds / audio seconds (lower is better; 0.02 = an hour in 72 s),
measured end to end through ``Transcriber.run``: streaming read, VAD, features, model,
decoding and word alignment. Input is synthetic speech-like audio (bursts of broadband
sound with pauses), so the VAD keeps ~70% of it, like conversational speech. When no
model is bundled yet, an untrained ``ctc_rnn`` with en-small's intended size stands in
(speed does not depend on the weights). On the CPU each RTF is taken at one thread and
at torch's default (one per core), which the network and the beam search both use; on
CUDA at the default, for the beam search, which stays on the CPU. Peak memory is the
child process's max RSS, at the default threads, on the last device measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAND_IN = {
    "task": {"name": "speech"},
    "features": {"name": "logmel", "sample_rate": 16000, "n_mels": 80},
    "model": {
        "name": "ctc_rnn",
        "cell": "gru",
        "hidden_size": 256,
        "num_layers": 3,
        "subsample": 4,
    },
    "decoder": {"name": "ctc_greedy"},
}


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Bursts of 0.3-3 s of shaped noise separated by 0.2-1.2 s pauses."""
    rng = np.random.default_rng(seed)
    out, n = [], 0
    while n < seconds * sr:
        burst = rng.standard_normal(int(rng.uniform(0.3, 3.0) * sr)) * 0.1
        burst *= np.abs(np.sin(np.linspace(0, rng.uniform(3, 12) * np.pi, len(burst))))
        pause = rng.standard_normal(int(rng.uniform(0.2, 1.2) * sr)) * 1e-4
        out += [burst, pause]
        n += len(burst) + len(pause)
    return np.concatenate(out)[: int(seconds * sr)].astype(np.float32)


def write_long(path: Path, minutes: float, sr: int = 16000) -> None:
    """Write ``minutes`` of audio a minute at a time, so the writer stays small too."""
    import soundfile as sf

    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1) as f:
        for i in range(int(np.ceil(minutes))):
            f.write(speechlike(min(60.0, minutes * 60 - i * 60), sr, seed=i))


def join_manifest(manifest: str, path: Path, sr: int = 16000, pause: float = 0.5) -> None:
    """One recording of a manifest's clips with ``pause`` s of silence between them."""
    from seqpipe.audio import load_audio, write_audio
    from seqpipe.data.manifest import read_manifest

    gap = np.zeros(int(pause * sr), np.float32)
    clips = [load_audio(e["audio"], sr) for e in read_manifest(manifest, required=("audio",))]
    write_audio(path, np.concatenate([x for clip in clips for x in (clip, gap)]), sr)


def models() -> list[tuple[str, str]]:
    """Every bundled speech model (the music bundles transcribe nothing)."""
    from seqpipe.pipeline import read_bundle_metadata
    from seqpipe.plugins import registry

    found = []
    for name in registry().names("bundle"):
        path = Path(registry().get("bundle", name).load())
        if path.exists() and read_bundle_metadata(path)["config"]["task"]["name"] == "speech":
            found.append((name, name))
    if found:
        return found
    from seqpipe.pipeline import Pipeline

    path = Path(tempfile.mkdtemp()) / "stand-in.safetensors"
    Pipeline.from_config(dict(STAND_IN)).save(path)
    return [("en-small-sized stand-in (untrained ctc_rnn)", str(path))]


def rtf(
    model: str,
    wav: Path,
    batch_size: int,
    device: str,
    threads: int,
    beam: int | None,
    compute_type: str = "auto",
) -> float:
    from seqpipe.audio import audio_duration
    from seqpipe.device import threads as torch_threads
    from seqpipe.speech.files import expand_inputs
    from seqpipe.speech.transcriber import Transcriber

    with torch_threads(threads):
        t = Transcriber(model, device, batch_size, beam, compute_type=compute_type)
        list(t.run(expand_inputs([str(wav)])))  # warm-up (first-call allocations)
        start = time.perf_counter()
        list(t.run(expand_inputs([str(wav)])))
    return (time.perf_counter() - start) / audio_duration(wav)


def peak_memory(
    model: str,
    minutes: float,
    device: str,
    batch_size: int,
    threads: int,
    beam: int | None,
    compute_type: str = "auto",
) -> dict:
    """Transcribe a ``minutes``-long file in a child process; its max RSS and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        write_long(wav, minutes)
        code = (
            "import sys, time, resource, torch; from seqpipe.speech.files import expand_inputs;"
            "from seqpipe.speech.transcriber import Transcriber;"
            f"torch.set_num_threads({threads});"
            f"t = Transcriber({model!r}, device={device!r}, batch_size={batch_size},"
            f" beam_size={beam}, compute_type={compute_type!r});"
            "s = time.perf_counter(); r = list(t.run(expand_inputs([sys.argv[1]])));"
            "print(time.perf_counter() - s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(r[0].transcript.segments))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(wav)], capture_output=True, text=True, check=True
        )
        seconds, rss_kb, segments = out.stdout.split()
        return {
            "minutes": minutes,
            "file_mb": round(wav.stat().st_size / 2**20),
            "peak_rss_mb": round(int(rss_kb) / 1024),
            "rtf": round(float(seconds) / (minutes * 60), 4),
            "segments": int(segments),
        }


def feature_throughput(seconds: float = 60.0) -> dict:
    """Audio seconds processed per wall second: log-mel (80 bands, 25/10 ms)."""
    import librosa
    import torch

    from seqpipe.features.logmel import LogMel

    x = speechlike(seconds)
    result = {}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        fe = LogMel(16000, 80).to(device)
        waves = torch.from_numpy(x)[None].to(device)
        lengths = torch.tensor([len(x)], device=device)
        fe(waves, lengths)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            fe(waves, lengths)
        if device == "cuda":
            torch.cuda.synchronize()
        result[f"torchaudio_{device}"] = round(5 * seconds / (time.perf_counter() - start))

    def librosa_logmel():
        return librosa.power_to_db(
            librosa.feature.melspectrogram(
                y=x, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80
            )
        )

    librosa_logmel()  # warm-up: librosa imports its submodules on first use
    start = time.perf_counter()
    for _ in range(5):
        librosa_logmel()
    result["librosa_cpu"] = round(5 * seconds / (time.perf_counter() - start))
    return result


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="bundle name or path (repeatable)")
    parser.add_argument("--seconds", type=float, default=120.0, help="audio length for RTF")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--long-minutes", type=float, default=60.0, help="length of the memory test input"
    )
    parser.add_argument(
        "--audio",
        help="a recording, or a JSONL manifest whose clips are joined with 0.5 s pauses, to"
        " measure RTF on (default: synthetic speech-like bursts)",
    )
    parser.add_argument("--beam-size", type=int, help="beam instead of the bundle's decoder")
    parser.add_argument(
        "--compute-type", default="auto", choices=["auto", "float32", "int8"],
        help="as seqpipe transcribe's (auto: int8 on the CPU)",
    )  # fmt: skip
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="RTF and memory on these devices only (repeatable; default: the CPU, and CUDA"
        " when present)",
    )
    args = parser.parse_args()
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    default_threads = torch.get_num_threads()
    results = {
        "threads": default_threads,
        "cpus": os.cpu_count(),
        "rtf": [],
        "memory": [],
        "features": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        if args.audio and args.audio.endswith(".jsonl"):
            join_manifest(args.audio, wav)
        elif args.audio:
            wav = Path(args.audio)
        else:
            import soundfile as sf

            sf.write(wav, speechlike(args.seconds), 16000)
        chosen = [(m, m) for m in args.model] if args.model else models()
        for label, model in chosen:
            for device in devices:
                # on CUDA the network runs on the GPU and the beam search on every core
                for threads in (
                    sorted({1, default_threads}) if device == "cpu" else [default_threads]
                ):
                    for batch in (1, args.batch_size):
                        value = rtf(
                            model, wav, batch, device, threads, args.beam_size, args.compute_type
                        )
                        row = {"model": label, "device": device, "threads": threads, "batch": batch}
                        results["rtf"].append({**row, "rtf": round(value, 4)})
                        print(
                            f"RTF  {label} {device} threads {threads} batch {batch}: {value:.4f}",
                            flush=True,
                        )
            if args.long_minutes <= 0:
                continue
            mem = peak_memory(
                model,
                args.long_minutes,
                devices[-1],
                args.batch_size,
                default_threads,
                args.beam_size,
                args.compute_type,
            )
            row = {"model": label, "device": devices[-1], "threads": default_threads}
            results["memory"].append({**row, **mem})
            print(f"MEM  {label:45s} {mem}", flush=True)
    results["features"] = feature_throughput()
    print(f"FEAT audio seconds per second: {results['features']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
