"""``seqpipe evaluate``."""

import click

from seqpipe.cli.transcribe import COMPUTE_TYPE


@click.command("evaluate")
@click.argument("bundle")
@click.argument("data", nargs=-1, required=True)
@click.option(
    "--json", "as_json", is_flag=True, help="print only JSON, a line per DATA (for scripts)"
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@COMPUTE_TYPE
def command(bundle, data, as_json, device, batch_size, compute_type) -> None:
    """Score BUNDLE (a .safetensors file or a bundled model's name) on each DATA with its task's metrics.

    DATA is whatever the bundle's task reads: a JSONL manifest for speech and
    classification, a melody corpus for the melody task. Prints a table and the JSON for
    each, then (for several) one table of all. A DATA that cannot be read is named on
    stderr, the others are still scored, and the exit code is 1.

    \b
    Examples:
      seqpipe evaluate runs/digits/model.safetensors data/fsdd-heldout.jsonl
      seqpipe evaluate en-small data/real/libri_dev.jsonl data/real/an4_dev.jsonl
      seqpipe evaluate runs/digits/model.safetensors data/test.jsonl --json | jq .wer
    """
    from rich.console import Console

    from seqpipe.training.evaluation import evaluate_files, json_line

    pipeline, scores = evaluate_files(
        bundle, data, device=device, batch_size=batch_size, compute_type=compute_type
    )
    console = Console()
    results, failed = [], False
    for scored in scores:
        if scored.error:
            click.echo(f"Error: {scored.error}", err=True)
            failed = True
        elif as_json:
            click.echo(json_line(scored.result))
        else:
            show(console, scored, pipeline.task.primary_metric)
        results += [scored.result] if scored.result else []
    if len(results) > 1 and not as_json:
        show_all(console, bundle, results)
    if failed:
        raise SystemExit(1)


def show(console, scored, primary: str) -> None:
    """One data source's metrics as a table, the task's report and the JSON line."""
    from rich.markdown import Markdown
    from rich.table import Table

    from seqpipe.training.evaluation import json_line

    result = scored.result
    table = Table(title=f"{result['bundle']} on {scored.data} ({result['examples']} examples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.items():
        if isinstance(value, float):
            table.add_row(f"{name} (primary)" if name == primary else name, f"{value:.4f}")
    console.print(table)
    if scored.report:
        console.print(Markdown(scored.report))
    console.print_json(json_line(result))


def show_all(console, bundle: str, results: list[dict]) -> None:
    """One table of every data source's metrics."""
    from rich.table import Table

    names = [k for k, v in results[0].items() if isinstance(v, float)]
    table = Table(title=f"{bundle}")
    for column in ("data", "examples", *names):
        table.add_column(column, justify="left" if column == "data" else "right")
    for result in results:
        cells = [f"{result[name]:.4f}" for name in names]
        table.add_row(result["data"], str(result["examples"]), *cells)
    console.print(table)
