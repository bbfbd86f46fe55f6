"""``seqpipe inspect BUNDLE``: what a bundle holds, read from its header alone."""

import json

import click


@click.command("inspect")
@click.argument("bundle")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(bundle: str, as_json: bool) -> None:
    """Show BUNDLE's components (with their packages and versions), config, sizes and
    facts, without loading its weights or needing its plugins. BUNDLE is a path or the
    name of a registered bundle."""
    from seqpipe.pipeline import describe_bundle

    about = describe_bundle(bundle)
    if as_json:
        click.echo(json.dumps(about, indent=2))
        return
    click.echo(f"{about['path']}: {about['format']}, seqpipe {about['seqpipe_version']}")
    click.echo(f"weights: {about['tensors']} tensors, {about['parameters']:,} values, "
               f"{about['bytes']:,} bytes")  # fmt: skip
    for part, c in about["components"].items():
        click.echo(f"{part}: {c['name']} ({c['package']} {c.get('version') or '?'})")
    for c in about["cells"]:
        click.echo(f"cell: {c['name']} ({c['package']} {c.get('version') or '?'})")
    click.echo("config:\n" + json.dumps(about["config"], indent=2))
    if about["info"]:
        click.echo(
            "info: " + ", ".join(f"{k}={v}" for k, v in about["info"].items() if k != "vocab")
        )
