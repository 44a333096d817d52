"""The library files a module runs: its import closure inside ``fsmc/``, read from the source with ``ast``.

Caches and ``dvc.yaml`` need to know which code determines an output. A hand-kept list goes
stale (it once left out the files that resize the teacher's training images, so editing them
reused a stale teacher); the import closure cannot: a new import is a new dependency. Every
``import`` statement counts, including those inside functions (lazy imports) and under
``TYPE_CHECKING``: a file that is read but not run costs a needless re-run, never a stale result.
Importing a module also runs its packages' ``__init__.py`` files, so they are in the closure too.
Nothing is imported here: ``dvc.yaml`` is rendered from the same answer without torch.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "fsmc"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_path(module: str) -> Path | None:
    """The source file of fsmc module ``module`` (a package's ``__init__.py``); ``None`` for a name that is no module."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def direct_imports(path: Path) -> frozenset[str]:
    """The fsmc modules ``path`` imports anywhere in its body (``from fsmc.a import b`` names ``fsmc.a.b`` when b is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return frozenset(name for name in found if module_path(name) is not None)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def import_closure(module: str) -> tuple[Path, ...]:
    """Every fsmc source file that importing ``module`` can run, sorted; ``module`` itself included."""
    if module_path(module) is None:
        raise ValueError(f"{module!r} is not a module of the {PACKAGE} package")
    seen: set[str] = set()
    pending = _with_parents(module)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name)
        if path is not None:
            pending.extend(parent for imported in direct_imports(path) for parent in _with_parents(imported))
    return tuple(sorted({p for p in map(module_path, seen) if p is not None}))


def closure_files(*modules: str) -> list[str]:
    """The union of the modules' closures, as paths relative to the project root (``fsmc/...``), sorted."""
    files = {path for module in modules for path in import_closure(module)}
    return sorted(str(path.relative_to(PACKAGE_DIR.parent)) for path in files)


def closure_digest(*modules: str) -> str:
    """sha256 over the names and bytes of the modules' closure: changes exactly when that code changes."""
    digest = hashlib.sha256()
    for name in closure_files(*modules):
        digest.update(name.encode())
        digest.update((PACKAGE_DIR.parent / name).read_bytes())
    return digest.hexdigest()
