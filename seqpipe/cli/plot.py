"""``seqpipe plot``."""

import click


@click.command("plot")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="PNG to write (default: RUN_DIR/curves.png)",
)
def command(run_dir, output) -> None:
    """Draw RUN_DIR's learning curves (training loss, lr, validation metrics) as a PNG."""
    from seqpipe.training.curves import plot_run

    click.echo(str(plot_run(run_dir, output)))
