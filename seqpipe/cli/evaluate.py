"""``seqpipe evaluate``."""

import click


@click.command("evaluate")
@click.argument("bundle")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="print only JSON (for scripts)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
def command(bundle, data, as_json, device, batch_size) -> None:
    """Score BUNDLE (a .safetensors file or a bundled model's name) on DATA with its task's metrics.

    DATA is whatever the bundle's task reads: a JSONL manifest for speech and
    classification, a melody corpus for the melody task. Prints a table and the JSON.

    \b
    Examples:
      seqpipe evaluate runs/digits/model.safetensors data/fsdd-heldout.jsonl
      seqpipe evaluate runs/digits/model.safetensors data/test.jsonl --json | jq .wer
    """
    import json

    from seqpipe.device import pick_device
    from seqpipe.pipeline import Pipeline
    from seqpipe.training.evaluation import evaluate

    torch_device = pick_device(device)
    pipeline = Pipeline.load(bundle, device=torch_device)
    examples = pipeline.task.load_data(data, train=False)
    metrics = evaluate(pipeline, examples, batch_size=batch_size, bf16=torch_device.type == "cuda")
    result = {"bundle": str(bundle), "data": str(data), "examples": len(examples), **metrics}
    if as_json:
        click.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    task = pipeline.task
    table = Table(title=f"{bundle} on {data} ({len(examples)} examples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        label = f"{name} (primary)" if name == task.primary_metric else name
        table.add_row(label, f"{value:.4f}")
    console = Console()
    console.print(table)
    report = task.report(metrics) if hasattr(task, "report") else None
    if report:
        from rich.markdown import Markdown

        console.print(Markdown(report))
    console.print_json(json.dumps(result))
