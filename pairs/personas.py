"""Persona pairs and system-prompt templates: the schema and the YAML / JSONL loaders.

A persona pair is two mirrored opposites: ``pos`` and ``neg``. A template is a system prompt with exactly one
``{persona}`` slot. Personas come in two grammatical forms — an adjective ("honest") or a behaviour clause
("looks after others' wellbeing even when it means defying authority") — and a template fits one of them
("Pretend you're a {persona} person." vs "Pretend you're someone who {persona}."); :func:`check_form` refuses a
mismatched combination.

Files: YAML (a list, or a mapping with a ``pairs:`` / ``templates:`` list) or JSONL (one object per line).
Errors name file:line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wsteer.chat import PERSONA_SLOT
from wsteer.config import read_yaml
from wsteer.errors import ConfigError, DataError, WsteerError
from wsteer.io import iter_jsonl
from wsteer.resources import shipped_path

Form = Literal["adjective", "clause"]
Channel = Literal["acting", "judging", "thinking", "stating", "understanding"]
CHANNELS = ("acting", "judging", "thinking", "stating", "understanding")
LIBRARY = Path(__file__).parent / "library"


@dataclass
class PersonaPair:
    """Two mirrored personas. ``*_behavior`` optionally describe what each pole does (for docs and judges)."""

    id: str
    pos: str
    neg: str
    pos_behavior: str | None = None
    neg_behavior: str | None = None
    notes: str | None = None
    where: str = field(default="", repr=False, compare=False)

    @property
    def form(self) -> Form:
        """'adjective' for short descriptors ("honest"), 'clause' for behaviour clauses."""
        return persona_form(self.pos)


@dataclass
class Template:
    """A system prompt with one ``{persona}`` slot, optionally bound to a behaviour channel."""

    id: str
    text: str
    channel: Channel | None = None
    form: Form | None = None
    notes: str | None = None
    where: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.form is None:
            self.form = template_form(self.text)

    def fill(self, persona: str) -> str:
        """The system prompt for ``persona``."""
        return self.text.replace(PERSONA_SLOT, persona.strip())


def persona_form(persona: str) -> Form:
    """Guess a persona's grammatical form: up to three words is an adjective phrase, longer is a clause."""
    return "adjective" if len(persona.split()) <= 3 else "clause"


def template_form(text: str) -> Form:
    """A slot right after "who"/"that" takes a clause ("someone who {persona}"); otherwise an adjective."""
    before = text.split(PERSONA_SLOT, 1)[0].rstrip().lower()
    return "clause" if re.search(r"\b(who|that|which)$", before) else "adjective"


def check_form(template: Template, pair: PersonaPair) -> None:
    """Raise if the pair's persona form does not fit the template's slot."""
    if template.form != pair.form:
        raise WsteerError(
            f"template {template.id!r} takes a {template.form} persona but pair {pair.id!r} is a {pair.form}",
            where=template.where or pair.where,
            fix="pick a template of the matching form (e.g. '… a {persona} person.' for adjectives, "
            "'… someone who {persona}.' for clauses)",
        )


# --------------------------------------------------------------------------------------------- loading
def _items(path: Path, key: str) -> list[tuple[str, Any]]:
    """(where, raw item) for each entry of a YAML or JSONL list file."""
    if path.suffix == ".jsonl":
        return [(f"{path}:{number}", record) for number, record in iter_jsonl(path)]
    if not path.is_file():
        raise DataError(f"file not found: {path}", where=str(path), fix="check the path")
    data = read_yaml(path)
    if isinstance(data, dict) and key in data:
        lines = getattr(data, "lines", {})
        data = data[key]
        start = lines.get(key, 1)
    else:
        start = 1
    if not isinstance(data, list):
        raise DataError(
            f"expected a list of {key} (or a mapping with a '{key}:' list)",
            where=f"{path}:{start}",
            fix=f"write '{key}:' followed by '- id: …' entries",
        )
    out = []
    for item in data:
        lines = getattr(item, "lines", None)
        line = min(lines.values()) if lines else start
        out.append((f"{path}:{line}", item))
    return out


def _require(item: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(item, dict):
        raise DataError(
            f"each entry must be a mapping, got {type(item).__name__}",
            where=where,
            fix="write entries as 'key: value' mappings",
        )
    for name in required:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "missing" if name not in item else "must be a non-empty string"
            raise DataError(f"field {name!r} {problem}", where=where, fix=f"give every entry a {name!r} string")
    unknown = sorted(set(item) - set(required) - set(optional))
    if unknown:
        raise DataError(
            f"unknown field {unknown[0]!r}", where=where, fix=f"allowed fields: {', '.join(required + optional)}"
        )
    for name in optional:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise DataError(f"field {name!r} must be a string", where=where, fix=f"quote the {name!r} value")
    return item


def _check_unique(entries: list, kind: str) -> None:
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.id in seen:
            raise DataError(
                f"duplicate {kind} id {entry.id!r} (first at {seen[entry.id]})",
                where=entry.where,
                fix="give every entry a unique id",
            )
        seen[entry.id] = entry.where


def load_pairs(path: str | Path) -> list[PersonaPair]:
    """Persona pairs from a YAML or JSONL file (``pairs/library/…`` also from an installed wheel)."""
    pairs = []
    for where, item in _items(shipped_path(path), "pairs"):
        item = _require(item, where, ("id", "pos", "neg"), ("pos_behavior", "neg_behavior", "notes"))
        pairs.append(PersonaPair(**{k: (v.strip() if isinstance(v, str) else v) for k, v in item.items()}, where=where))
    _check_unique(pairs, "pair")
    return pairs


def load_templates(path: str | Path) -> list[Template]:
    """Templates from a YAML or JSONL file (``pairs/library/…`` also from an installed wheel); each must have exactly
    one ``{persona}`` slot."""
    templates = []
    for where, item in _items(shipped_path(path), "templates"):
        item = _require(item, where, ("id", "text"), ("channel", "form", "notes"))
        slots = item["text"].count(PERSONA_SLOT)
        if slots != 1:
            raise DataError(
                f"template {item['id']!r} has {slots} {PERSONA_SLOT} slots; it needs exactly one",
                where=where,
                fix=f"write one {PERSONA_SLOT} where the persona goes",
            )
        if item.get("channel") is not None and item["channel"] not in CHANNELS:
            raise DataError(
                f"channel {item['channel']!r} is not one of {', '.join(CHANNELS)}",
                where=where,
                fix="use one of the listed channels or leave it out",
            )
        if item.get("form") is not None and item["form"] not in ("adjective", "clause"):
            raise DataError(
                f"form {item['form']!r} must be 'adjective' or 'clause'",
                where=where,
                fix="use adjective or clause, or leave it out to infer it",
            )
        templates.append(Template(**item, where=where))
    _check_unique(templates, "template")
    return templates


def find_by_id(entries: list, entry_id: str | None, kind: str, source: str | Path) -> Any:
    """The entry with ``entry_id``, or with ``None`` the file's only entry; the errors list the ids that exist."""
    ids = ", ".join(e.id for e in entries[:20])
    if entry_id is None:
        if len(entries) == 1:
            return entries[0]
        raise ConfigError(
            f"{source} holds {len(entries)} {kind}s; which one?",
            where=f"{kind}.id",
            fix=f"set {kind}.id to one of: {ids}",
        )
    for entry in entries:
        if entry.id == entry_id:
            return entry
    raise WsteerError(f"no {kind} with id {entry_id!r} in {source}", where=f"{kind}_id", fix=f"use one of: {ids}")
