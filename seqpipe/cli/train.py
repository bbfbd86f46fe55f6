"""``seqpipe train``."""

import click


@click.command("train")
@click.argument("config")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a config value, e.g. --set train.lr=3e-4 (repeatable)",
)
@click.option(
    "--out", "run_dir", type=click.Path(file_okay=False), help="run directory (default: runs/NAME)"
)
@click.option(
    "--resume", is_flag=True, help="continue from the run directory's last good checkpoint"
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps")
@click.option(
    "--dry-run", is_flag=True, help="build the pipeline and one batch, compute its loss, then stop"
)
def command(config, overrides, run_dir, resume, device, dry_run) -> None:
    """Train the pipeline in CONFIG (a recipe file, or the name of a shipped recipe: see
    'seqpipe recipes'); the run directory ends with the best model bundle.

    \b
    Examples:
      seqpipe train tiny --out runs/tiny
      seqpipe train configs/classify/fsdd-digits.yaml --out runs/digits --resume
      torchrun --nproc-per-node 4 -m seqpipe train configs/classify/fsdd-digits.yaml
      seqpipe train tiny --set model.cell=mingru --dry-run
    """
    import os

    from rich.console import Console

    from seqpipe.config import load_config
    from seqpipe.recipes import find_recipe
    from seqpipe.training.run import dry_run as check
    from seqpipe.training.run import fit

    console = Console(stderr=True)
    if dry_run:
        seen = check(load_config(find_recipe(config), list(overrides)))
        click.echo("\n".join(f"{key}: {value}" for key, value in seen.items()))
        return
    summary = fit(
        load_config(find_recipe(config), list(overrides)),
        run_dir,
        device=device,
        resume=resume,
        console=console,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        best = summary["best"]
        metric = summary["primary_metric"]
        value = best.get(metric)
        shown = f"{value:.4f}" if isinstance(value, float) else "n/a"
        console.print(
            f"done: best {metric} {shown} (epoch {best['epoch']}); "
            f"bundle {summary['run_dir']}/model.safetensors"
        )
