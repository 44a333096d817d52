"""A finished run folder is sealed: its files' sha256 go into ``run.json``, and readers check them.

``fsmc log-run`` and ``fsmc export`` load checkpoints from a folder that may
have sat on disk (or in an artifact store) for a while. Before loading, every
file they read must (1) resolve inside the run folder — a symlink or path
pointing elsewhere is refused, since nobody named that file — and (2) have the
sha256 the run recorded when it wrote it, so a swapped or corrupted checkpoint
is never unpickled, even with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

from fsmc.atomic import read_json, sha256_file
from fsmc.errors import FsmcError
from fsmc.workspace import Workspace

# Written after sealing, or by later commands: not part of the record.
_UNSEALED = ("run.json", "export", "ship")


def seal(ws: Workspace) -> dict[str, str]:
    """``{path relative to the run folder: sha256}`` of every output the run wrote."""
    root = ws.root.resolve()
    outputs = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and relative.parts[0] not in _UNSEALED and not path.name.endswith(".tmp"):
            outputs[relative.as_posix()] = sha256_file(path)
    return outputs


def inside(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved, refused when it (or a symlink on the way) leads outside ``root``."""
    resolved, resolved_root = Path(path).resolve(), Path(root).resolve()
    if not resolved.is_relative_to(resolved_root):
        raise FsmcError(
            f"{what} {path} resolves to {resolved}, outside {resolved_root}. fsmc reads and writes a run's files only "
            "inside its run folder; copy the file into the folder, or name the outside path explicitly on the command line."
        )
    return resolved


def _read_record(ws: Workspace) -> dict:
    """``run.json`` as a dict; a damaged one is bad input (a file edited or truncated), not a bug."""
    try:
        record = read_json(ws.run_record)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        record = None
    if not isinstance(record, dict):
        raise FsmcError(
            f"{ws.run_record} is not the JSON object fsmc writes when a run finishes (the file is damaged or not "
            "fsmc's). Restore it, or rerun the pipeline into a new folder with `fsmc run --workspace FOLDER`."
        )
    return record


def verify(ws: Workspace, files: list[Path]) -> None:
    """Refuse ``files`` of ``ws`` that lie outside it or differ from what the run recorded in ``run.json``."""
    record = _read_record(ws) if ws.run_record.is_file() else {}
    sealed = record.get("outputs")
    if sealed is None:
        raise FsmcError(
            f"{ws.run_record} records no checksums of the run's outputs, so its checkpoints cannot be verified before "
            "loading. Give a run folder written by this fsmc version (rerun it with `fsmc run --workspace FOLDER`)."
        )
    root = ws.root.resolve()
    for path in files:
        resolved = inside(path, root, "Run file")
        relative = resolved.relative_to(root).as_posix()
        expected = sealed.get(relative)
        if expected is None:
            raise FsmcError(f"{path} is not among the outputs recorded in {ws.run_record}; fsmc loads only files its run wrote.")
        actual = sha256_file(resolved)
        if actual != expected:
            raise FsmcError(
                f"{path} has sha256 {actual} but the run recorded {expected} in {ws.run_record}: the file changed after "
                "the run wrote it. Restore it, or rerun the pipeline into a new folder."
            )
