"""The code's layering, read from the source: what a reviewer would otherwise check by hand on every change."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("fsmc", "tasks", "flows")


def _modules() -> dict[str, ast.Module]:
    """``{dotted module name: parsed source}`` of the project's packages and benchmarks."""
    found = {}
    for folder in (*PACKAGES, "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement, nested ones included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
    return out


def test_the_pure_library_imports_neither_prefect_nor_mlflow():
    offenders = [
        (name, module)
        for name, tree in _modules().items()
        if name.startswith("fsmc")
        for module, _ in _imports(tree)
        if module.split(".")[0] in ("prefect", "mlflow", "prefect_dask")
    ]
    assert not offenders, f"fsmc/ is the pure library; move these imports to tasks/ or flows/: {offenders}"


def test_no_module_imports_a_private_name_of_another():
    offenders = [
        (name, f"{module}.{taken}")
        for name, tree in _modules().items()
        for module, names in _imports(tree)
        if module.split(".")[0] in PACKAGES
        for taken in names
        if taken.startswith("_")
    ]
    assert not offenders, f"private names imported across modules (make them public or move them): {offenders}"


def _module_graph() -> dict[str, set[str]]:
    """``{module: modules of the project it imports}`` (``from a import b`` names ``a.b`` when b is a module)."""
    modules = {name: tree for name, tree in _modules().items() if name.split(".")[0] in PACKAGES}
    return {
        name: {module for module, _ in _imports(tree) if module in modules and module != name}
        | {f"{module}.{taken}" for module, names in _imports(tree) for taken in names if f"{module}.{taken}" in modules}
        for name, tree in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Depth-first search with colours: meeting a node still on the stack is a cycle."""
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def _package_of(module: str) -> str:
    """The package a module belongs to for layering: ``fsmc.<subpackage>``, a top-level ``fsmc`` module itself, or tasks / flows."""
    parts = module.split(".")
    if parts[0] != "fsmc" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def test_the_package_modules_import_no_cycle():
    cycles = _cycles(_module_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_the_packages_import_no_cycle():
    """fsmc.models, fsmc.compress, fsmc.recover, ... form layers: a package never imports one that imports it back."""
    packages: dict[str, set[str]] = {}
    for module, imported in _module_graph().items():
        edges = packages.setdefault(_package_of(module), set())
        edges.update(_package_of(other) for other in imported if _package_of(other) != _package_of(module))
    assert "fsmc.compress" in packages["fsmc.recover"], "the graph is read (recovery imports the compression it recovers)"
    cycles = _cycles(packages)
    assert not cycles, f"package import cycles (move the shared code to the lower package): {cycles}"


def test_the_command_line_loads_no_heavy_library_before_a_command_needs_it():
    """`fsmc --help`, the listings and refused input answer before torch, Prefect, MLflow or scikit-learn load.

    (Their time is measured in benchmarks/cli_startup.py; here, what makes it short.)
    """
    import subprocess
    import sys

    probe = (
        "import sys, flows.cli, fsmc.config, fsmc.preflight, fsmc.models.pretrained; "
        "print(' '.join(sorted(m for m in ('torch', 'prefect', 'mlflow', 'sklearn', 'scipy', 'torch_pruning', 'dask') if m in sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"importing the command line loads {loaded}: import them inside the command that needs them"
