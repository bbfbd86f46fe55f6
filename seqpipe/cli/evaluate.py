"""``seqpipe evaluate``."""

import click


@click.command("evaluate")
@click.argument("bundle")
@click.argument("data", nargs=-1, required=True)
@click.option(
    "--json", "as_json", is_flag=True, help="print only JSON, a line per DATA (for scripts)"
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
def command(bundle, data, as_json, device, batch_size) -> None:
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
    from rich.table import Table

    from seqpipe.device import pick_device
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipeline import Pipeline
    from seqpipe.training.evaluation import evaluate, json_line

    torch_device = pick_device(device)
    pipeline = Pipeline.load(bundle, device=torch_device)
    task = pipeline.task
    console = Console()
    results, failed = [], False
    for path in data:
        try:
            examples = task.load_data(path, train=False)
        except SeqpipeError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        metrics = evaluate(
            pipeline, examples, batch_size=batch_size, bf16=torch_device.type == "cuda"
        )
        result = {"bundle": str(bundle), "data": str(path), "examples": len(examples), **metrics}
        results.append(result)
        if as_json:
            click.echo(json_line(result))
            continue
        table = Table(title=f"{bundle} on {path} ({len(examples)} examples)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in metrics.items():
            label = f"{name} (primary)" if name == task.primary_metric else name
            table.add_row(label, f"{value:.4f}")
        console.print(table)
        report = task.report(metrics) if hasattr(task, "report") else None
        if report:
            from rich.markdown import Markdown

            console.print(Markdown(report))
        console.print_json(json_line(result))
    if len(results) > 1 and not as_json:
        names = [k for k, v in results[0].items() if isinstance(v, float)]
        table = Table(title=f"{bundle}")
        for column in ("data", "examples", *names):
            table.add_column(column, justify="left" if column == "data" else "right")
        for result in results:
            cells = [f"{result[name]:.4f}" for name in names]
            table.add_row(result["data"], str(result["examples"]), *cells)
        console.print(table)
    if failed:
        raise SystemExit(1)
