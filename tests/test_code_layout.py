"""The code's layout stays what docs/architecture.md says: each report section calls only the helper
modules that name it, every package is installed, anncore imports no MLflow/Altair/report code, the
experiments' packages import only the layers below them (no circles, not even inside functions), no
package imports another's private names, and no function grows past about 60 lines."""

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


# experiments' layers, bottom up: a module may import only from the groups below its own (so
# tracking never imports the search or the studies, the studies never the suite, and no two
# layers import each other). Top-level modules are layers of their own, packages one each.
EXPERIMENT_LAYERS = (
    {"settings"},
    {"arguments"},
    {"charts"},
    {"tracking"},
    {"search"},
    {"studies"},
    {"suite"},
    {"rerun"},
    {"cli"},
    {"__main__", "__init__"},
    {"benchmark", "server"},
)


def _layer(path: Path) -> str:
    """The layer of a module under experiments/: its package, or its own name for a top-level module."""
    parts = path.relative_to(REPO / "experiments").parts
    return parts[0] if len(parts) > 1 else path.stem


def _experiment_layers_imported(source: str) -> set[str]:
    """The experiments layers ``source`` imports, at module level or inside functions alike."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from experiments import suite` names the layer in the imported name
            modules += [f"{node.module}.{alias.name}" if node.module == "experiments" else node.module for alias in node.names]
    return {module.split(".")[1] for module in modules if module.startswith("experiments.")}


def test_the_experiments_layers_import_only_downward() -> None:
    rank = {name: position for position, group in enumerate(EXPERIMENT_LAYERS) for name in group}
    upward = []
    for path in (REPO / "experiments").rglob("*.py"):
        layer = _layer(path)
        assert layer in rank, f"{path.relative_to(REPO)}: layer {layer!r} is not in EXPERIMENT_LAYERS"
        for imported in _experiment_layers_imported(path.read_text()) - {layer}:
            if rank[imported] >= rank[layer]:
                upward.append(f"{path.relative_to(REPO)} ({layer}) imports {imported}")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_the_layer_check_sees_imports_inside_functions() -> None:
    source = "def f():\n    from experiments.studies.sweep import run\n    import experiments.suite\n" \
             "    from experiments import rerun\n"
    assert _experiment_layers_imported(source) == {"studies", "suite", "rerun"}


def _private_names_imported(path: Path, package_of) -> list[str]:
    """``from pkg.mod import _name`` and ``mod._name`` where ``mod`` comes from another package than ``path``'s."""
    tree = ast.parse(path.read_text())
    own, found, bound = package_of(path), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if _private(alias.name) and package_of(node.module) != own:
                    found.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            bound |= {alias.asname or alias.name.split(".")[0]: alias.name for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
            origin = bound.get(node.value.id, "")
            if origin.startswith(("anncore", "experiments", "reporting")) and package_of(origin) != own:
                found.append(f"{node.value.id}.{node.attr} ({origin})")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name != "_"  # `_`: gettext, by convention


def test_no_package_imports_another_packages_private_names() -> None:
    def package_of(where: Path | str) -> str:
        if isinstance(where, Path):
            parts = where.relative_to(REPO).with_suffix("").parts
            parts = parts[1:] if parts[0] == "report" else parts
        else:
            parts = tuple(where.split("."))
        return ".".join(parts[:2]) if parts[0] == "experiments" and len(parts) > 2 else parts[0]

    found = []
    for folder in (REPO / "anncore", REPO / "experiments", REPORT / "reporting"):
        for path in folder.rglob("*.py"):
            found += [f"{path.relative_to(REPO)}: {name}" for name in _private_names_imported(path, package_of)]
    assert not found, "private names used across packages:\n" + "\n".join(found)


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
