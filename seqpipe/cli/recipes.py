"""``seqpipe recipes``: the recipes shipped inside the package, for ``seqpipe train NAME``."""

import click


@click.command("recipes")
@click.option("--show", metavar="NAME", help="Print this recipe's YAML (to copy and edit).")
def command(show: str | None) -> None:
    """List the shipped recipes (or --show one); train one with 'seqpipe train NAME'."""
    from seqpipe.recipes import describe, find_recipe, recipe_names

    if show:
        click.echo(find_recipe(show).read_text(), nl=False)
        return
    for name in recipe_names():
        click.echo(f"{name}\t{describe(name)}")
