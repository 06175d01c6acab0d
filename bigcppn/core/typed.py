"""Plain data (as TOML gives it) checked against a frozen dataclass's annotations, and built into it.

Unknown keys and wrong types are refused by name (:class:`~bigcppn.errors.ConfigError`, one line).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from ..errors import ConfigError
from .limits import describe

__all__ = ["build", "type_name"]


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return "a list of " + plural.get(typing.get_args(tp)[0], "values")
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the field's type."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key} must be {type_name(tp)}, got {describe(value)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be {type_name(tp)}, got {describe(value)}")
        args = typing.get_args(tp)
        elem = args[0]
        return tuple(coerce(v, elem, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {describe(value)}")
        return build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{key} must be a finite number (no nan or inf), got {describe(value)}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {type_name(tp)}, got {describe(value)}")


def build(cls: type, data: dict, prefix: str = "") -> Any:
    """``cls(**data)``, every value checked against its field's annotation (nested tables built too)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if k not in names:
            raise ConfigError(f"unknown config key '{key}'; known keys here: {', '.join(sorted(names))}")
        kwargs[k] = coerce(v, hints[k], key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{prefix or 'config'}: {exc}") from None
