"""``seqpipe plugins``: what is installed, who provided it, and what failed."""

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--all", "show_all", is_flag=True,
    help="Also list built-in plugins one by one, and installed plugins that are disabled.",
)  # fmt: skip
def command(as_json: bool, show_all: bool) -> None:
    """List installed plugins and the components they register; with --all, also those
    not loaded and why (SEQPIPE_PLUGINS, or the error that disabled them)."""
    from seqpipe.plugins import describe

    about = describe(show_disabled=show_all)
    if as_json:
        for plugin in about["plugins"]:
            del plugin["components"]  # the JSON lists components on their own
        click.echo(json.dumps(about, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title="seqpipe components")
    for column in ("kind", "name", "package", "description"):
        table.add_column(column)
    for c in about["components"]:
        table.add_row(c["kind"], c["name"], c["package"], c["help"])
    console = Console()
    console.print(table)

    rows = [p for p in about["plugins"] if not p["builtin"] or show_all]
    rows += about.get("disabled", [])
    if rows:
        ptable = Table(title="plugins")
        for column in ("plugin", "package", "version", "status"):
            ptable.add_column(column)
        for p in rows:
            status = (
                f"[red]failed: {p['error']}[/red]" if p.get("error")
                else f"[yellow]disabled: {p['reason']}[/yellow]" if p.get("reason")
                else f"{p['components']} components"
            )  # fmt: skip
            ptable.add_row(p["name"], p["package"], p["version"], status)
        console.print(ptable)
