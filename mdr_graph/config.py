"""One configuration path: dataclasses, read from and saved as TOML beside each run.

Each component declares a dataclass of its settings. A run's settings come from, in
order of precedence: command-line flags that were given, then ``--config FILE.toml``,
then the dataclass defaults. The resolved settings are saved as ``config.toml`` in the
run directory, and ``--config RUNDIR/config.toml`` reproduces the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from mdr_graph.errors import UserError
from mdr_graph.io import write_text

DEVICES = ("cpu", "cuda")   # where a training stage may run (--device)

T = TypeVar("T")


def _toml_safe(v: Any) -> Any:
    """TOML has no null: drop Nones, stringify paths, recurse into containers."""
    if isinstance(v, dict):
        return {k: _toml_safe(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_toml_safe(x) for x in v if x is not None]
    if isinstance(v, Path):
        return str(v)
    return v


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_toml(path: str | Path, sections: dict[str, Any]) -> None:
    """Save ``{section: dataclass-or-dict}`` as TOML, atomically."""
    data = {k: _toml_safe(to_dict(v) if dataclasses.is_dataclass(v) else v) for k, v in sections.items()}
    write_text(path, tomli_w.dumps(data))


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None


def from_dict(cls: type[T], values: dict[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                        f"known: {', '.join(sorted(names))}")
    return cls(**values)


def resolve(cls: type[T], args: argparse.Namespace, section: str, base: dict[str, Any] | None = None) -> T:
    """Defaults < TOML section (``args.config``) < explicit CLI flags.

    CLI flags count as explicit when they are not ``None``; declare every overridable
    flag with ``default=None`` so that an unset flag does not hide the TOML value.
    """
    values: dict[str, Any] = dict(base or {})
    cfg_path = getattr(args, "config", None)
    if cfg_path:
        values.update(load_toml(cfg_path).get(section, {}))
    names = {f.name for f in dataclasses.fields(cls)}
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    return from_dict(cls, values, source=str(cfg_path or "defaults"))


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass field ``name`` (calling its ``default_factory``)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def show_defaults(parser: argparse.ArgumentParser, *classes: type) -> None:
    """Append to each flag's help the default of the dataclass field it sets (the first class that has it).

    Flags are declared with ``default=None`` so that an unset flag does not hide a TOML value
    (:func:`resolve`); this shows the value that applies then, taken from the dataclass rather
    than retyped. Empty defaults ("" or []) and on/off switches are left as their help says.
    """
    for action in parser._actions:
        if action.default is not None or action.nargs == 0:
            continue
        cls = next((c for c in classes if action.dest in {f.name for f in dataclasses.fields(c)}), None)
        if cls is None:
            continue
        value = field_default(cls, action.dest)
        if value in ("", None) or value in ([], {}):
            continue
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value).lower() \
            if isinstance(value, bool) else str(value)
        action.help = f"{action.help or ''} (default: {shown})".lstrip()
