"""``seqpipe plugins``: what is installed, who provided it, and what failed."""

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--all", "show_builtins", is_flag=True,
    help="Also list built-in plugins one by one, and installed plugins that are disabled.",
)  # fmt: skip
def command(as_json: bool, show_builtins: bool) -> None:
    """List installed plugins and the components they register; with --all, also those
    not loaded and why (SEQPIPE_PLUGINS, or the error that disabled them)."""
    from seqpipe.plugins import load

    plugins = load()
    if as_json:
        rows = [
            {
                "kind": c.kind,
                "name": c.name,
                "plugin": c.plugin,
                "package": c.package,
                "help": c.help,
            }
            for c in plugins.registry.all()
        ]
        out = {
            "components": rows,
            "plugins": [
                {
                    "name": p.name,
                    "package": p.package,
                    "version": p.version,
                    "builtin": p.builtin,
                    "error": p.error,
                }
                for p in plugins.info.values()
            ],
        }
        if show_builtins:
            out["disabled"] = [
                {"name": p.name, "package": p.package, "version": p.version, "reason": p.disabled}
                for p in plugins.disabled
            ]
        click.echo(json.dumps(out, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title="seqpipe components")
    for column in ("kind", "name", "package", "description"):
        table.add_column(column)
    for c in plugins.registry.all():
        table.add_row(c.kind, c.name, c.package, c.help)
    console = Console()
    console.print(table)

    external = [p for p in plugins.info.values() if not p.builtin or show_builtins]
    external += plugins.disabled if show_builtins else []
    if external:
        ptable = Table(title="plugins")
        for column in ("plugin", "package", "version", "status"):
            ptable.add_column(column)
        for p in external:
            status = (
                f"[red]failed: {p.error}[/red]"
                if p.error
                else f"[yellow]disabled: {p.disabled}[/yellow]"
                if p.disabled
                else f"{len(p.components)} components"
            )
            ptable.add_row(p.name, p.package, p.version, status)
        console.print(ptable)
