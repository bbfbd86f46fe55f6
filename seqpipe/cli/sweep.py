"""``seqpipe sweep``."""

import click


@click.command("sweep")
@click.argument("config")
@click.option(
    "--grid",
    "grid",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2",
    help="values to try (repeatable); KEY=LOW:HIGH is a range for --trials",
)
@click.option(
    "--trials", type=click.IntRange(min=1), help="random/TPE search with Optuna: this many trials"
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="fixed override for every trial"
)
@click.option("--out", default="runs/sweep", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, help="seed of the search (not of training)")
@click.option("--device", default="auto", show_default=True)
def command(config, grid, trials, overrides, out, seed, device) -> None:
    """Train CONFIG once per setting and write OUT/results.md sorted by the validation metric.

    \b
    Examples:
      seqpipe sweep tiny --grid lr=1e-3,3e-3 --grid hidden_size=16,32
      seqpipe sweep configs/classify/fsdd-digits.yaml --grid lr=1e-4:1e-2 --grid dropout=0,0.2,0.4 --trials 12
    """
    from rich.console import Console
    from rich.table import Table

    from seqpipe.recipes import find_recipe
    from seqpipe.training.sweep import sweep

    console = Console(stderr=True)
    rows = sweep(
        str(find_recipe(config)),
        list(grid),
        out,
        overrides=list(overrides),
        trials=trials,
        seed=seed,
        device=device,
        console=console,
    )
    table = Table(title=f"{out}/results.md (best first)")
    columns = list(dict.fromkeys(k for row in rows for k in row if k != "run_dir"))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                f"{row.get(c):.4g}" if isinstance(row.get(c), float) else str(row.get(c, ""))
                for c in columns
            )
        )
    Console().print(table)
