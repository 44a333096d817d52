"""Reading the configuration: ``params.yaml`` and ``--set`` overrides into validated :class:`Params`.

Overrides take ``section.key`` or, when the leaf name is unique across sections,
just ``key`` (``--set method=kd``). Values are coerced to each field's type once,
here; :func:`fsmc.config.checks.validate` then checks their ranges.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from fsmc.config.checks import validate
from fsmc.config.schema import Params
from fsmc.errors import FsmcError

_SECTION_TYPES: dict[str, type] = {f.name: get_type_hints(Params)[f.name] for f in fields(Params)}


def _leaf_index() -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for section, cls in _SECTION_TYPES.items():
        for f in fields(cls):
            index.setdefault(f.name, []).append(section)
    return index


def valid_keys() -> list[str]:
    """Every ``section.key`` that params.yaml and ``--set`` accept."""
    return [f"{s}.{f.name}" for s, cls in _SECTION_TYPES.items() for f in fields(cls)]


def resolve_key(key: str) -> tuple[str, str]:
    """Map ``section.key`` or a unique leaf ``key`` to ``(section, key)``."""
    if "." in key:
        section, _, leaf = key.partition(".")
        cls = _SECTION_TYPES.get(section)
        if cls is not None and leaf in {f.name for f in fields(cls)}:
            return section, leaf
    else:
        sections = _leaf_index().get(key, [])
        if len(sections) == 1:
            return sections[0], key
        if len(sections) > 1:
            options = ", ".join(f"{s}.{key}" for s in sections)
            raise FsmcError(f"The key {key!r} is ambiguous: it exists in several sections. Write one of: {options}.")
    raise FsmcError(
        f"Unknown parameter {key!r}. Valid keys are: {', '.join(valid_keys())} "
        "(a leaf name alone also works when it is unique, e.g. 'method')."
    )


def _coerce(section: str, key: str, value: Any, target: type) -> Any:
    """Convert ``value`` (from YAML or a ``--set`` string) to ``target`` or raise."""
    where = f"{section}.{key}"
    if isinstance(value, str) and target is not str:
        text = value.strip()
        try:
            if target is bool:
                lowered = text.lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError
            converted = target(text)
            if target is float and not math.isfinite(converted):
                raise ValueError
            return converted
        except ValueError:
            raise FsmcError(f"{where}={value!r} is not a valid {target.__name__}; give a {target.__name__} value.") from None
    if target is float and isinstance(value, float) and not math.isfinite(value):
        raise FsmcError(f"{where}={value!r} is not a finite number; give a finite float.")
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if target is str and isinstance(value, bool):
        # YAML 1.1 (PyYAML, and DVC rewriting params.yaml) reads an unquoted on/off as a boolean.
        return "on" if value else "off"
    if target is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise FsmcError(
            f"{where}={value!r} has type {type(value).__name__}, but {where} takes a {target.__name__}."
        )
    return value


def _build(raw: dict[str, dict[str, Any]]) -> Params:
    sections = {}
    for section, cls in _SECTION_TYPES.items():
        given = raw.get(section) or {}
        hints = get_type_hints(cls)
        values = {k: _coerce(section, k, v, hints[k]) for k, v in given.items()}
        sections[section] = cls(**values)
    return Params(**sections)


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, str]]:
    """Turn ``["method=kd", "sample_few_shot.k_max=10"]`` into ``{section: {key: value}}``."""
    overrides: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FsmcError(f"--set {pair!r} is not of the form KEY=VALUE (e.g. --set recover.method=kd).")
        section, leaf = resolve_key(key.strip())
        overrides.setdefault(section, {})[leaf] = value
    return overrides


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a file that is not UTF-8 YAML is bad input, not a bug."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FsmcError(f"Parameter file {str(path)!r} is not a UTF-8 text file; pass --params PATH to a params.yaml.") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise FsmcError(
            f"Parameter file {str(path)!r} is not valid YAML ({problem}{at}); fix it or pass --params PATH to a "
            "params.yaml of sections with key: value lines."
        ) from None


def read_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """The sections of a params file as ``{section: {key: value}}``, not yet coerced or validated.

    Raises:
        FsmcError: a missing or unreadable file, YAML that does not parse, or an unknown or malformed section.
    """
    path = Path(path)
    if not path.is_file():
        raise FsmcError(f"Parameter file {str(path)!r} does not exist; pass --params PATH to a params.yaml.")
    loaded = _read_yaml(path) or {}
    if not isinstance(loaded, dict):
        raise FsmcError(f"{path} must hold a mapping of sections, not {type(loaded).__name__}.")
    raw: dict[str, dict[str, Any]] = {}
    for section, body in loaded.items():
        if section not in _SECTION_TYPES:
            raise FsmcError(f"Unknown section {section!r} in {path}; valid sections: {', '.join(_SECTION_TYPES)}.")
        if not isinstance(body, dict):
            raise FsmcError(f"Section {section!r} in {path} must be a mapping of keys to values.")
        raw[section] = dict(body)
    return raw


def load_params(path: Path | None = None, overrides: list[str] | None = None) -> Params:
    """Load ``params.yaml`` (or the defaults when ``path`` is None), apply overrides, validate.

    Raises:
        FsmcError: on a missing file, unknown section or key, wrong type or bad value.
    """
    raw = read_params_file(path) if path is not None else {}
    for section, body in parse_overrides(overrides or []).items():
        raw.setdefault(section, {}).update(body)
    return params_from_dict(raw)


def params_from_dict(raw: dict[str, dict[str, Any]]) -> Params:
    """Build and validate :class:`Params` from nested ``{section: {key: value}}`` (e.g. a flow parameter)."""
    for section, body in raw.items():
        if section not in _SECTION_TYPES:
            raise FsmcError(f"Unknown section {section!r}; valid sections: {', '.join(_SECTION_TYPES)}.")
        for key in body:
            resolve_key(f"{section}.{key}")
    return validate(_build(raw))


def dump_params(params: Params) -> str:
    """YAML text of ``params`` in section order (for writing params.yaml)."""
    return yaml.safe_dump(params.to_dict(), sort_keys=False)
