"""Typed configs: one dataclass per stage is both the Python API and the YAML schema.

Declare fields with :func:`option` so each carries a help string::

    @dataclass
    class SamplingConfig:
        temperature: float = option(0.7, "Softmax temperature; 0 means greedy.")

Load with :func:`load_config`, which reads YAML, applies ``key.sub=value`` overrides, checks every value against
the annotations and reports unknown keys with the file, the line and the closest valid key. The resolved config
is saved next to each output with :func:`wsteer.manifest.save_config`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Sequence, TypeVar, Union

import yaml

from wsteer.errors import ConfigError, WsteerError

T = TypeVar("T")

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, factory: Any = _MISSING) -> Any:
    """A dataclass field with a help string. Mutable defaults (lists, dicts) go through ``factory``."""
    if not help:
        raise TypeError("every config option needs a help string")
    if isinstance(default, (list, dict, set)):
        raise TypeError("use factory= for mutable defaults")
    kwargs: dict[str, Any] = {"metadata": {"help": help}}
    if factory is not _MISSING:
        kwargs["default_factory"] = factory
    elif default is not _MISSING:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


def parse_finite_number(raw: str, name: str, where: str, fix: str) -> float:
    """``raw`` as a finite float; else a :class:`WsteerError` naming ``name`` (e.g. "weight", "α") and ``where``,
    with ``fix`` as the fix when it is not a number at all."""
    try:
        value = float(raw)
    except ValueError:
        raise WsteerError(f"{name} {raw!r} is not a number", where=where, fix=fix) from None
    if not math.isfinite(value):
        raise WsteerError(f"{name} {raw!r} is not finite", where=where, fix=f"use a finite {name}")
    return value


def field_help(cls: type, name: str) -> str:
    """The help string of field ``name`` of dataclass ``cls``."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}[name]


# --------------------------------------------------------------------------------------------- YAML reading
class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key, so errors can say file:line."""


def _construct_mapping_with_lines(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    mapping = _LinedDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


class _LinedDict(dict):
    """A dict that also maps each key to the 1-based line it was written on."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_with_lines)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; mappings come back as dicts that remember each key's line (``.lines``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", fix="check the path passed to --config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path), fix="save the file as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", where=where, fix="fix the YAML syntax") from None


# --------------------------------------------------------------------------------------------- overrides
def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], value); the value is parsed as YAML (so 1e-4, true, [1,2] work)."""
    if "=" not in item:
        raise ConfigError(
            f"override {item!r} is not of the form key=value",
            where="command line",
            fix="write overrides as key=value, e.g. learning_rate=1e-4",
        )
    key, _, raw = item.partition("=")
    key = key.strip().lstrip("-")
    if not key:
        raise ConfigError(
            f"override {item!r} has an empty key", where="command line", fix="write overrides as key=value"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _apply_override(data: dict, where_map: dict, item: str) -> None:
    keys, value = parse_override(item)
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value
    where_map[tuple(keys)] = f"override '{item}'"


def _collect_lines(data: Any, file: str, prefix: tuple, where_map: dict) -> None:
    if isinstance(data, _LinedDict):
        for key, value in data.items():
            where_map[prefix + (key,)] = f"{file}:{data.lines.get(key, '?')}"
            _collect_lines(value, file, prefix + (key,), where_map)


# --------------------------------------------------------------------------------------------- type checking
def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        return f"list[{', '.join(_type_name(a) for a in typing.get_args(annotation))}]"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _type_error(key: str, value: Any, where: str, expected: str) -> ConfigError:
    return ConfigError(
        f"{key} must be {expected}, got {value!r} ({type(value).__name__})", where=where, fix=f"set {key} to {expected}"
    )


def _coerce_union(value: Any, args: tuple, key: str, where: str) -> Any:
    """The first member of the union that accepts ``value`` (None only where the union allows it)."""
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce_value(value, arg, key, where)
        except ConfigError:
            continue
    raise _type_error(key, value, where, " or ".join(_type_name(a) for a in args))


def _coerce_literal(value: Any, args: tuple, key: str, where: str) -> Any:
    if value in args:
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{key} must be one of {list(args)}, got {value!r}{hint}", where=where, fix=f"choose one of {list(args)}"
    )


def _coerce_float(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _type_error(key, value, where, "a number")
    try:
        result = float(value)  # YAML 1.1 reads "1e-4" as a string
    except ValueError:
        raise _type_error(key, value, where, "a number") from None
    if not math.isfinite(result):
        raise _type_error(key, value, where, "a finite number")
    return result


def _coerce_scalar(value: Any, annotation: Any, key: str, where: str) -> Any:
    """bool, int, float, str and Path: exact types only, except lossless conversions (int -> float, str -> Path)."""
    if annotation is float:
        return _coerce_float(value, key, where)
    accepted = {
        bool: ((bool,), "true or false"),
        int: ((int,), "an integer"),
        str: ((str,), "a string"),
        Path: ((str, Path), "a path"),
    }
    if annotation in accepted:
        types_, expected = accepted[annotation]
        if isinstance(value, types_) and not (annotation is int and isinstance(value, bool)):
            return Path(value) if annotation is Path else value
        raise _type_error(key, value, where, expected)
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise _type_error(key, value, where, _type_name(annotation))


def coerce_value(value: Any, annotation: Any, key: str, where: str) -> Any:
    """Check ``value`` against ``annotation``; return it converted where the conversion is lossless."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        return _coerce_union(value, args, key, where)
    if origin is Literal:
        return _coerce_literal(value, args, key, where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise _type_error(key, value, where, f"a mapping of {annotation.__name__} fields")
        return _build(annotation, value, (key,), {}, where)
    if origin in (list, tuple, collections.abc.Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, value, where, "a list")
        item_type = args[0] if args else Any
        return [coerce_value(v, item_type, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, where, "a mapping")
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): coerce_value(v, value_type, f"{key}.{k}", where) for k, v in value.items()}
    return _coerce_scalar(value, annotation, key, where)


def _build(cls: type[T], data: dict, prefix: tuple, where_map: dict, default_where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = prefix + (key,)
        where = where_map.get(path, default_where)
        dotted = ".".join(str(p) for p in path)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = (
                f"did you mean {'.'.join(map(str, prefix + (close[0],)))!r}?"
                if close
                else (f"valid keys: {', '.join(sorted(fields))}")
            )
            raise ConfigError(f"unknown key {dotted!r} in {cls.__name__}", where=where, fix=hint)
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
            kwargs[key] = _build(annotation, value, path, where_map, where)
        else:
            kwargs[key] = coerce_value(value, annotation, dotted, where)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is _MISSING and f.default_factory is _MISSING
    ]
    if missing:
        names = ", ".join(".".join(map(str, prefix + (m,))) for m in missing)
        raise ConfigError(
            f"missing required key(s) {names} in {cls.__name__}",
            where=default_where,
            fix=f"add {names} to the config or pass {missing[0]}=VALUE",
        )
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a check in __post_init__ that names its own key: add the file (or override)
        where = f"{default_where}: {exc.where}" if exc.where else default_where
        raise ConfigError(exc.what, where=where, fix=exc.fix) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc), where=default_where, fix="correct the value named above") from None


# --------------------------------------------------------------------------------------------- public API
def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (), data: dict | None = None
) -> T:
    """Build a ``cls`` config from a YAML file and/or a dict, then ``key.sub=value`` overrides.

    Raises:
        ConfigError: naming the key, the file:line (or the override) and the closest valid key.
    """
    where_map: dict[tuple, str] = {}
    merged: dict = {}
    source = "config"
    if path is not None:
        source = str(path)
        loaded = read_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"the top level must be a mapping of {cls.__name__} keys, got {type(loaded).__name__}",
                where=f"{path}:1",
                fix="write key: value lines",
            )
        _collect_lines(loaded, str(path), (), where_map)
        merged = loaded
    if data:
        merged = _deep_merge(merged, data)
    for item in overrides:
        _apply_override(merged, where_map, item)
    return _build(cls, merged, (), where_map, source)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    if isinstance(base, _LinedDict):
        out = _LinedDict(base)
        out.lines = dict(base.lines)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_to_dict(cfg: Any) -> dict:
    """A plain, YAML-safe dict of a config dataclass (paths become strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(cfg))


def config_to_yaml(cfg: Any, header: str | None = None) -> str:
    """YAML text of a config, with an optional ``# header`` comment."""
    body = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
    if header:
        body = "".join(f"# {line}\n" for line in header.splitlines()) + body
    return body


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return _MISSING


def changed_defaults(value: Any, prefix: str = "") -> list[str]:
    """``key=value`` for every (nested) field of a dataclass instance that differs from its class default."""
    changes = []
    for f in dataclasses.fields(value):
        current, default = getattr(value, f.name), _field_default(f)
        if dataclasses.is_dataclass(current) and dataclasses.is_dataclass(default):
            changes += changed_defaults(current, f"{prefix}{f.name}.")
        elif current != default:
            changes.append(f"{prefix}{f.name}={current!r}")
    return changes


def config_reference(
    cls: type, prefix: str = "", instance: Any = None, stop: tuple[type, ...] = ()
) -> list[tuple[str, str, str, str]]:
    """Rows (key, type, default, help) for every field of ``cls``, nested dataclasses flattened with dots.

    Defaults come from ``instance`` when given (so a nested section shows its parent's defaults, not its class's).
    Nested classes in ``stop`` get one row, whose default lists how the parent's default differs from the class's.
    """
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        name = f"{prefix}{f.name}"
        default = getattr(instance, f.name) if instance is not None else _field_default(f)
        help_text = f.metadata.get("help", "")
        if dataclasses.is_dataclass(annotation) and annotation in stop:
            changes = changed_defaults(default) if default is not _MISSING else []
            rows.append((name, annotation.__name__, ", ".join(changes) or "class defaults", help_text))
        elif dataclasses.is_dataclass(annotation):
            rows.append((name, annotation.__name__, "", help_text))
            nested = default if default is not _MISSING else None
            rows.extend(config_reference(annotation, prefix=name + ".", instance=nested, stop=stop))
        else:
            shown = "(required)" if default is _MISSING else repr(default)
            rows.append((name, _type_name(annotation), shown, help_text))
    return rows
