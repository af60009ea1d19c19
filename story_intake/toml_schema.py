"""Turn one TOML table into one frozen settings dataclass, rejecting what does not fit.

Every error names the key (``mailbox.batch_size``), never the value, because a value in the
wrong place may be a secret.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from intake.errors import ConfigError

T = TypeVar("T")


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file at ``path``; ConfigError saying which file (``what``) and why."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{what} file not found: {path}") from err
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{what} file {path} cannot be read: {err}") from err


def build(cls: type[T], table: Mapping[str, Any], section: str, positive: bool = False) -> T:
    """Fill ``cls`` from ``table``; unknown keys and wrong types raise ConfigError.

    With ``positive``, every number (an interval, a count, a size, a port) must be above zero
    unless its field's metadata says ``zero_allowed`` (then at least zero).
    """
    if isinstance(table, list):  # [[section]]: TOML's array of tables
        raise ConfigError(f"{section}: several [[{section}]] tables are not supported yet")
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{section}] must be a table")
    hints = typing.get_type_hints(cls)
    # Fields marked toml=False (resolved secrets) are filled by the loader, never by the file.
    fields = {
        f.name: f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.metadata.get("toml", True)
    }
    for key in table:
        if key not in fields:
            raise ConfigError(f"unknown key {section}.{key}")
    values: dict[str, Any] = {}
    for name in fields:
        if name in table:
            values[name] = check(table[name], hints[name], f"{section}.{name}")
            if positive:
                _check_positive(values[name], fields[name], f"{section}.{name}")
        elif _has_no_default(fields[name]):
            raise ConfigError(f"missing key {section}.{name}")
    return cls(**values)


def _check_positive(value: Any, field: dataclasses.Field[Any], key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if field.metadata.get("zero_allowed"):
        if value < 0:
            raise ConfigError(f"{key} must not be negative")
    elif value <= 0:
        raise ConfigError(f"{key} must be greater than 0")


def _has_no_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def check(value: Any, hint: Any, key: str) -> Any:
    """Return ``value`` converted to ``hint`` (lists become tuples) or raise naming ``key``."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        allowed = " | ".join(str(a) for a in typing.get_args(hint))
        raise ConfigError(f"{key} must be one of: {allowed}")
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(hint):
            try:
                return check(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key} has the wrong type")
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list")
        return tuple(check(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key} has the wrong type")
    # bool is an int in Python; a TOML `true` where a number belongs is still a mistake.
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key} must be an integer")
    if hint is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{key} must be a number")
    if hint is float and not math.isfinite(value):  # TOML allows inf and nan
        raise ConfigError(f"{key} must be a finite number")
    if hint in (str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{key} must be a {'string' if hint is str else 'boolean'}")
    return float(value) if hint is float else value
