"""``seqpipe export``: a bundle's model (and optionally its audio front end) as an ONNX file."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("model")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The ONNX file to write (model.onnx).")  # fmt: skip
@click.option("--features", is_flag=True,
              help="Speech models: put the log-mel/MFCC front end in the graph, so it reads "
              "waveforms [B, N] instead of feature frames.")  # fmt: skip
@click.option("--no-check", is_flag=True,
              help="Skip running onnxruntime against PyTorch before keeping the file.")  # fmt: skip
def command(model: str, output: str, features: bool, no_check: bool) -> None:
    """Export MODEL (a bundle name or .safetensors path) to ONNX.

    \b
    Speech (CTC) models: feats[B,T,F], lengths[B] -> log_probs[B,T',V], out_lengths[B]
    (with --features: waves[B,N], lengths[B] -> log_probs, out_lengths, frames);
    classifiers: -> logits[B,C]; melody LMs: one step(), token[B] and the state (and
    the lookback facts, with lookback_bars) in, logits[B,V] and the next state out.
    Batch and time axes are dynamic; labels, sample rate and the feature/model/decoder
    config are in the metadata props. The file is kept only if onnxruntime matches
    PyTorch (max abs diff < 1e-4) at two batch sizes and two lengths.

    \b
    Examples:
      seqpipe export digits -o digits.onnx
      seqpipe export en-small --features -o en-small.onnx
      seqpipe export folk -o folk-step.onnx
    """
    from seqpipe.deploy.export import export_bundle

    result = export_bundle(model, output, features=features, check=not no_check)
    checked = f"; onnxruntime vs PyTorch max abs diff {result.max_abs_diff:.1e}"
    click.echo(f"{result.path}: {result.kind} graph"
               f"{' with features' if result.features else ''}{checked if result.checks else ''}")  # fmt: skip
