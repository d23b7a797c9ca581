"""The code's layout stays what docs/architecture.md says: each report section calls only the helper
modules that name it, every package is installed, anncore imports no MLflow/Altair/report code, and
no function grows past about 60 lines."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "report"
SECTIONS = REPORT / "reporting" / "sections"
MAX_FUNCTION_LINES = 60  # code lines, the docstring left out


def served_qmds(module: Path) -> set[str]:
    """The .qmd files a section helper's docstring says it serves (``Serves report/_07-depth.qmd ...``)."""
    doc = ast.get_docstring(ast.parse(module.read_text())) or ""
    first = doc.split(":", 1)[0]
    assert first.startswith("Serves report/"), f"{module.name}: docstring must start 'Serves report/<file>.qmd'"
    return set(re.findall(r"(_?\d*-?[\w-]*\.qmd)", first))


def test_each_qmd_calls_only_the_helpers_that_serve_it() -> None:
    modules = {path.stem: served_qmds(path) for path in SECTIONS.glob("*.py") if path.stem != "__init__"}
    called_anywhere = set()
    for qmd in sorted(REPORT.glob("*.qmd")):
        calls = set(re.findall(r"^(\w+)\.\w+\(", qmd.read_text(), flags=re.MULTILINE)) & set(modules)
        called_anywhere |= calls
        for module in calls:
            assert qmd.name in modules[module], f"{qmd.name} calls reporting.sections.{module}, which serves {modules[module]}"
    assert called_anywhere == set(modules), f"helpers no .qmd calls: {set(modules) - called_anywhere}"
    for module, qmds in modules.items():
        for name in qmds:
            assert (REPORT / name).exists(), f"reporting.sections.{module} names {name}, which does not exist"


def test_every_package_folder_is_installed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {name: REPO / folder for name, folder in config.get("package-dir", {}).items()}
    found = set()
    for root, package in [(REPO / "anncore", "anncore"), (REPO / "experiments", "experiments"), (mapped["reporting"], "reporting")]:
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((package, *parts)))
    assert found == listed, f"packages on disk but not in pyproject: {found - listed}; listed but missing: {listed - found}"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_layers_point_one_way() -> None:
    for path in (REPO / "anncore").rglob("*.py"):
        assert not _imports(path) & {"mlflow", "altair", "experiments", "reporting"}, path
    for path in (REPO / "experiments" / "charts").rglob("*.py"):
        imported = _imports(path)
        assert "mlflow" not in imported and "reporting" not in imported, path
    for path in (REPO / "experiments").rglob("*.py"):
        assert "reporting" not in _imports(path), f"{path} imports the report's helpers"


def test_no_function_is_longer_than_about_sixty_lines() -> None:
    long = []
    for folder in (REPO / "anncore", REPO / "experiments", REPORT / "reporting"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                lines = node.end_lineno - node.lineno + 1
                if ast.get_docstring(node) is not None:
                    lines -= node.body[0].end_lineno - node.body[0].lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into named steps:\n" + "\n".join(long)
