"""The layout docs/architecture.md promises: every module in its table, thin CLIs,
recipes-only configs/, models that never reach up into the pipeline or the plugins."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seqpipe"


def table_rows() -> dict[str, set[str]]:
    """package -> modules named in its row(s) of architecture.md's package table."""
    rows: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`seqpipe"):
            package = re.match(r"`([\w.]+)`", cells[0]).group(1)
            rows.setdefault(package, set()).update(re.findall(r"`(\w+)`", cells[1]))
    return rows


def test_architecture_lists_every_module():
    rows = table_rows()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        package = ".".join(parts[:-1])
        if parts[-1] == "__init__" and package != "seqpipe":
            continue  # a package's own row stands for it
        assert parts[-1] in rows.get(package, set()), f"{path} is missing from architecture.md"


def test_cli_functions_are_short():
    for path in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                assert node.end_lineno - start < 60, f"{path}:{node.name} is over 60 lines"


def test_configs_hold_only_recipes():
    assert {p.suffix for p in (ROOT / "configs").rglob("*") if p.is_file()} == {".yaml"}


def test_components_do_not_import_the_core_above_them():
    for path in (PACKAGE / "models").glob("*.py"):
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & {"seqpipe.pipeline", "seqpipe.plugins"}, path


def test_experiments_do_not_import_each_other():
    scripts = {p.stem for p in (ROOT / "experiments").glob("*.py")} - {"common"}
    for path in (ROOT / "experiments").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                assert not set(names) & scripts, f"{path} imports a sibling script"
