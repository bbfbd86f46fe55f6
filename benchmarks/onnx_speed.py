"""onnxruntime vs PyTorch on the CPU: real-time factor of a speech bundle's acoustic model
and tokens/s of the melody LM's step().

RTF = compute seconds / audio seconds for the acoustic model alone (features in torch,
outside the timing), on one utterance of ``--seconds`` and on a batch of 8; the median of
``--repeats`` runs. Both backends get the same thread count (``--threads``, default 2).

    nice python benchmarks/onnx_speed.py                 # digits, 2 threads
    nice python benchmarks/onnx_speed.py --melody runs/folk-base/model.safetensors
    nice python benchmarks/onnx_speed.py -m en-small --seconds 20
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seqpipe.deploy.export import export_onnx
from seqpipe.deploy.runtime import OnnxCTC, OnnxLM
from seqpipe.pipeline import Pipeline


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speech(model: str, seconds: float, repeats: int, tmp: Path) -> None:
    pipeline = Pipeline.load(model, "cpu").eval()
    export_onnx(pipeline, tmp / "speech.onnx")
    onnx = OnnxCTC(str(tmp / "speech.onnx"), torch.get_num_threads())
    sr = pipeline.sample_rate
    for batch in (1, 8):
        torch.manual_seed(0)
        waves = 0.1 * torch.randn(batch, int(seconds * sr))
        lengths = torch.full((batch,), waves.shape[1])
        with torch.inference_mode():
            feats, frames = pipeline.features(waves, lengths)
            t_torch = median_time(lambda f=feats, n=frames: pipeline.model(f, n), repeats)
        t_onnx = median_time(lambda f=feats, n=frames: onnx(f, n), repeats)
        audio = batch * seconds
        print(f"{model} batch {batch} x {seconds:g} s: RTF torch {t_torch / audio:.4f}, "
              f"onnxruntime {t_onnx / audio:.4f} ({t_torch / t_onnx:.2f}x)")  # fmt: skip


def melody(model: str, steps: int, repeats: int, tmp: Path) -> None:
    pipeline = Pipeline.load(model, "cpu").eval()
    export_onnx(pipeline, tmp / "lm.onnx")
    onnx = OnnxLM(str(tmp / "lm.onnx"), torch.get_num_threads())

    def run(lm) -> None:
        state, token = lm.initial_state(1), torch.tensor([1])
        for _ in range(steps):
            logits, state = lm.step(token, state)
            token = logits.argmax(-1)

    with torch.inference_mode():
        t_torch = median_time(lambda: run(pipeline.model), repeats)
    t_onnx = median_time(lambda: run(onnx), repeats)
    print(f"{model} step(): torch {steps / t_torch:.0f} tokens/s, "
          f"onnxruntime {steps / t_onnx:.0f} tokens/s ({t_torch / t_onnx:.2f}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="digits")
    parser.add_argument("--melody", help="a melody bundle without lookback inputs (the bundled "
                        "folk model has them, which the step graph does not hold yet)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        speech(args.model, args.seconds, args.repeats, Path(tmp))
        if args.melody:
            melody(args.melody, args.steps, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
